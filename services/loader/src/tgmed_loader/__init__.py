"""Lake files into PostgreSQL `raw` tables, idempotently."""
