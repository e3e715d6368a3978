"""Runs the dbt project as a pipeline stage."""
