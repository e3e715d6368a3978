"""The platform's data as Dagster assets, one module per domain: the lake (lake.py), the
raw tables (raw.py), the dbt models (dbt.py), the pipeline's health (monitoring.py)."""
