{#-
  One writer per state schema. A run takes the lock before it reads or writes the ledger and
  releases it at the end. `lock_strategy` picks how:
    - 'advisory' (PostgreSQL): a session-level advisory lock, released by the server when the
      run's connection ends, however the run ends (even SIGKILL);
    - 'lease' (every other warehouse): a row in stripe_sync_lock, taken over when its holder is
      a dead process on this host or its heartbeat is older than the lease.
  Either way the lease row names the holder, so a waiting run can say who holds the lock.
  Override any of these with adapter.dispatch (e.g. Snowflake, BigQuery).
-#}

{% macro lock_strategy() %}
  {{ return(adapter.dispatch('lock_strategy', 'dbt_stripe_sync')()) }}
{% endmacro %}

{% macro default__lock_strategy() %}
  {{ return('lease') }}
{% endmacro %}

{% macro postgres__lock_strategy() %}
  {{ return('advisory') }}
{% endmacro %}

{% macro lock_columns() %}
  {{ return(adapter.dispatch('lock_columns', 'dbt_stripe_sync')()) }}
{% endmacro %}

{% macro default__lock_columns() %}
  {{ return([
    ('lock_name', dbt.type_string()),
    ('run_id', dbt.type_string()),
    ('host', dbt.type_string()),
    ('pid', dbt.type_int()),
    ('acquired_at', dbt.type_timestamp()),
    ('heartbeat_at', dbt.type_timestamp()),
  ]) }}
{% endmacro %}

{% macro create_lock_table_sql(lock_relation) %}
  {{ return(adapter.dispatch('create_lock_table_sql', 'dbt_stripe_sync')(lock_relation)) }}
{% endmacro %}

{% macro default__create_lock_table_sql(lock_relation) %}
  {%- set cols = [] -%}
  {%- for name, type in dbt_stripe_sync.lock_columns() -%}
    {%- do cols.append(adapter.quote(name) ~ ' ' ~ type) -%}
  {%- endfor -%}
  {{ return('create table if not exists ' ~ lock_relation ~ ' (' ~ cols | join(', ')
            ~ ', primary key (' ~ adapter.quote('lock_name') ~ '))') }}
{% endmacro %}

{% macro try_advisory_lock_sql(lock_id) %}
  {{ return(adapter.dispatch('try_advisory_lock_sql', 'dbt_stripe_sync')(lock_id)) }}
{% endmacro %}

{% macro default__try_advisory_lock_sql(lock_id) %}
  {{ return('select pg_try_advisory_lock(' ~ lock_id ~ ')') }}
{% endmacro %}

{% macro advisory_unlock_sql(lock_id) %}
  {{ return(adapter.dispatch('advisory_unlock_sql', 'dbt_stripe_sync')(lock_id)) }}
{% endmacro %}

{% macro default__advisory_unlock_sql(lock_id) %}
  {{ return('select pg_advisory_unlock(' ~ lock_id ~ ')') }}
{% endmacro %}
