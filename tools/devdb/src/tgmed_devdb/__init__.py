"""The project's own PostgreSQL: an embedded server (pgserver, PostgreSQL 16) that
`make db-start` starts under data/pg and tests start in a temporary folder. Anything
else is reached by setting DATABASE_URL."""
