{#-
  DDL of dbt-stripe-sync's state: the ledger (one row per sync and source key) and the runs
  table (one row per sync per run). Each macro returns SQL text; dbt-stripe-sync runs it.
  Override any of them for your warehouse with adapter.dispatch (search_order: your project
  first, then dbt_stripe_sync).
-#}

{% macro ledger_columns() %}
  {{ return(adapter.dispatch('ledger_columns', 'dbt_stripe_sync')()) }}
{% endmacro %}

{% macro default__ledger_columns() %}
  {{ return([
    ('sync_name', dbt.type_string()),
    ('source_key', dbt.type_string()),
    ('object_type', dbt.type_string()),
    ('stripe_id', dbt.type_string()),
    ('payload_hash', dbt.type_string()),
    ('payload_json', dbt.type_string()),
    ('status', dbt.type_string()),
    ('pending_op', dbt.type_string()),
    ('pending_json', dbt.type_string()),
    ('attempt_hash', dbt.type_string()),
    ('idempotency_key', dbt.type_string()),
    ('last_error', dbt.type_string()),
    ('attempts', dbt.type_int()),
    ('first_synced_at', dbt.type_timestamp()),
    ('updated_at', dbt.type_timestamp()),
    ('run_id', dbt.type_string()),
    ('stripe_account', dbt.type_string()),
    ('payload_quick_hash', dbt.type_bigint()),
  ]) }}
{% endmacro %}

{% macro runs_columns() %}
  {{ return(adapter.dispatch('runs_columns', 'dbt_stripe_sync')()) }}
{% endmacro %}

{% macro default__runs_columns() %}
  {{ return([
    ('run_id', dbt.type_string()),
    ('sync_name', dbt.type_string()),
    ('object_type', dbt.type_string()),
    ('started_at', dbt.type_timestamp()),
    ('finished_at', dbt.type_timestamp()),
    ('status', dbt.type_string()),
    ('created', dbt.type_int()),
    ('updated', dbt.type_int()),
    ('deleted', dbt.type_int()),
    ('archived', dbt.type_int()),
    ('skipped', dbt.type_int()),
    ('rejected', dbt.type_int()),
    ('api_calls', dbt.type_int()),
    ('duration_s', dbt.type_float()),
    ('error', dbt.type_string()),
  ]) }}
{% endmacro %}

{% macro create_state_sql(ledger_relation, runs_relation) %}
  {{ return(adapter.dispatch('create_state_sql', 'dbt_stripe_sync')(ledger_relation, runs_relation)) }}
{% endmacro %}

{% macro default__create_state_sql(ledger_relation, runs_relation) %}
  {%- set statements = [] -%}
  {%- set cols = [] -%}
  {%- for name, type in dbt_stripe_sync.ledger_columns() -%}
    {%- do cols.append(adapter.quote(name) ~ ' ' ~ type) -%}
  {%- endfor -%}
  {%- do statements.append('create table if not exists ' ~ ledger_relation ~ ' (' ~ cols | join(', ')
        ~ ', primary key (' ~ adapter.quote('sync_name') ~ ', ' ~ adapter.quote('source_key') ~ '))') -%}
  {%- set rcols = [] -%}
  {%- for name, type in dbt_stripe_sync.runs_columns() -%}
    {%- do rcols.append(adapter.quote(name) ~ ' ' ~ type) -%}
  {%- endfor -%}
  {%- do statements.append('create table if not exists ' ~ runs_relation ~ ' (' ~ rcols | join(', ') ~ ')') -%}
  {{ return(statements) }}
{% endmacro %}

{% macro add_column_sql(relation, name, type) %}
  {{ return(adapter.dispatch('add_column_sql', 'dbt_stripe_sync')(relation, name, type)) }}
{% endmacro %}

{% macro default__add_column_sql(relation, name, type) %}
  {{ return('alter table ' ~ relation ~ ' add column ' ~ adapter.quote(name) ~ ' ' ~ type) }}
{% endmacro %}

{#- How a batch of ledger rows is written. 'on_conflict': one `insert ... on conflict do update`
    statement per chunk, atomic on its own, so a row can never be missing between a delete and an
    insert even where the adapter does not hold statements in one transaction (seen with
    dbt-postgres). 'delete_insert': a delete and a multi-row insert in one transaction, for
    warehouses without ON CONFLICT (override with MERGE where you have it). -#}
{% macro ledger_write_strategy() %}
  {{ return(adapter.dispatch('ledger_write_strategy', 'dbt_stripe_sync')()) }}
{% endmacro %}

{% macro default__ledger_write_strategy() %}
  {{ return('delete_insert') }}
{% endmacro %}

{% macro postgres__ledger_write_strategy() %}
  {{ return('on_conflict') }}
{% endmacro %}

{% macro duckdb__ledger_write_strategy() %}
  {{ return('on_conflict') }}
{% endmacro %}
