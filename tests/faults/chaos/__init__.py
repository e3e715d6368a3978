"""The fault suite (`make chaos`): whole `telegram_pipeline` runs through Dagster, with
faults injected underneath them, and the three questions users ask after an incident
answered with numbers: did it lose data, did it duplicate data, did it tell us.

It depends only on the platform's stable surfaces: the job name, Dagster's GraphQL API
(launch, run status, event log), the lake layout, the warehouse tables, the stage CLIs'
names (to find their processes) and the alert webhook's payload.
"""
