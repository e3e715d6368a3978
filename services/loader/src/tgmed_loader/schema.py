"""The warehouse's raw layer and roles, created idempotently (safe to run any time, by
several loaders at once: an advisory lock serialises them)."""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

RAW_DDL = """
create schema if not exists raw;
create schema if not exists staging;
create schema if not exists marts;

create table if not exists raw.telegram_messages (
    channel_username text not null,
    message_id bigint not null,
    message_date timestamptz not null,
    scraped_at timestamptz not null,
    record jsonb not null,
    source_file text not null,
    loaded_at timestamptz not null default now(),
    primary key (channel_username, message_id)
);

create table if not exists raw.telegram_message_observations (
    channel_username text not null,
    message_id bigint not null,
    observed_at timestamptz not null,
    message_date timestamptz not null,
    record jsonb not null,
    source_file text not null,
    loaded_at timestamptz not null default now(),
    primary key (channel_username, message_id, observed_at)
);

create table if not exists raw.telegram_channel_snapshots (
    channel_username text not null,
    observed_at timestamptz not null,
    record jsonb not null,
    source_file text not null,
    loaded_at timestamptz not null default now(),
    primary key (channel_username, observed_at)
);

create table if not exists raw.yolo_detections (
    channel_username text not null,
    message_id bigint not null,
    model_hash text not null,
    detected_at timestamptz not null,
    record jsonb not null,
    source_file text not null,
    loaded_at timestamptz not null default now(),
    primary key (channel_username, message_id, model_hash)
);

create table if not exists raw.message_extractions (
    channel_username text not null,
    message_id bigint not null,
    extractor_version text not null,
    scraped_at timestamptz not null,
    extracted_at timestamptz not null,
    record jsonb not null,
    source_file text not null,
    loaded_at timestamptz not null default now(),
    primary key (channel_username, message_id, extractor_version)
);

create table if not exists raw.load_audit (
    file_path text primary key,
    stream text not null,
    checksum text not null,
    size_bytes bigint not null,
    row_count integer not null,
    load_mode text not null,
    loaded_at timestamptz not null default now()
);
create index if not exists load_audit_checksum on raw.load_audit (checksum);

-- dbt's incremental models read the rows loaded since their last build (loaded_at at or
-- after a point in time): without these, every incremental build read whole tables
create index if not exists telegram_messages_loaded_at on raw.telegram_messages (loaded_at);
create index if not exists telegram_message_observations_loaded_at
    on raw.telegram_message_observations (loaded_at);
create index if not exists message_extractions_loaded_at on raw.message_extractions (loaded_at);

-- API keys (`tgmed-loader keys`): the id and the SHA-256 of each key, never the key; the
-- API's role reads them, only this role writes them
create schema if not exists auth;
create table if not exists auth.api_keys (
    key_id text primary key,
    name text not null,
    scope text not null check (scope in ('reports', 'posts', 'all')),
    secret_hash text not null,
    rate_limit integer check (rate_limit > 0),
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);
create unique index if not exists api_keys_active_name on auth.api_keys (name)
    where revoked_at is null;
"""

_LOCK = 72_901_337  # advisory lock id for schema changes


def ensure_raw_schema(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", [_LOCK])
        conn.execute(RAW_DDL)


def ensure_api_role(conn: psycopg.Connection, user: str, password: str | None) -> None:
    """A role that can read the marts (and the API keys' ids and hashes) and nothing else:
    no access to raw or staging, no writes anywhere. Tables dbt creates later in marts
    are readable too (default privileges of the role that runs dbt, which is this
    connection's role)."""
    role = sql.Identifier(user)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", [_LOCK])
        exists = conn.execute("select 1 from pg_roles where rolname = %s", [user]).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("create role {} login nosuperuser nocreatedb nocreaterole").format(role)
            )
        if password:
            conn.execute(sql.SQL("alter role {} password {}").format(role, sql.Literal(password)))
        database = sql.Identifier(conn.info.dbname)
        conn.execute(sql.SQL("revoke all on database {} from public").format(database))
        conn.execute(sql.SQL("grant connect on database {} to {}").format(database, role))
        conn.execute("revoke create on schema public from public")
        conn.execute(sql.SQL("grant usage on schema auth to {}").format(role))
        conn.execute(
            sql.SQL(
                "grant select (key_id, name, scope, secret_hash, rate_limit, revoked_at)"
                " on auth.api_keys to {}"
            ).format(role)
        )
        for schema in ("raw", "staging"):
            conn.execute(
                sql.SQL("revoke all on schema {} from {}").format(sql.Identifier(schema), role)
            )
        conn.execute(sql.SQL("grant usage on schema marts to {}").format(role))
        conn.execute(sql.SQL("grant select on all tables in schema marts to {}").format(role))
        conn.execute(
            sql.SQL("alter default privileges in schema marts grant select on tables to {}").format(
                role
            )
        )
    log.info("read-only role %s can select from marts (and API key hashes) and nothing else", user)
