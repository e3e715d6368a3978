-- Dagster's run, event-log and schedule storage: its own database on the warehouse server
create database dagster;
