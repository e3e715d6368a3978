"""The analytical API: FastAPI over the dbt marts, read through a read-only role."""
