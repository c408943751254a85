{#-
  DDL of stripe_sync_changelog: one row per operation a run performed or refused. Returns SQL
  text; dbt-stripe-sync runs it. Override through adapter.dispatch like the other state macros.
-#}

{% macro changelog_columns() %}
  {{ return(adapter.dispatch('changelog_columns', 'dbt_stripe_sync')()) }}
{% endmacro %}

{% macro default__changelog_columns() %}
  {{ return([
    ('run_id', dbt.type_string()),
    ('sync_name', dbt.type_string()),
    ('source_key', dbt.type_string()),
    ('action', dbt.type_string()),
    ('stripe_id', dbt.type_string()),
    ('outcome', dbt.type_string()),
    ('changed_fields', dbt.type_string()),
    ('idempotency_key', dbt.type_string()),
    ('request_id', dbt.type_string()),
    ('http_status', dbt.type_int()),
    ('error', dbt.type_string()),
    ('at', dbt.type_timestamp()),
    ('stripe_account', dbt.type_string()),
  ]) }}
{% endmacro %}

{% macro create_changelog_sql(changelog_relation) %}
  {{ return(adapter.dispatch('create_changelog_sql', 'dbt_stripe_sync')(changelog_relation)) }}
{% endmacro %}

{% macro default__create_changelog_sql(changelog_relation) %}
  {%- set cols = [] -%}
  {%- for name, type in dbt_stripe_sync.changelog_columns() -%}
    {%- do cols.append(adapter.quote(name) ~ ' ' ~ type) -%}
  {%- endfor -%}
  {{ return(['create table if not exists ' ~ changelog_relation ~ ' (' ~ cols | join(', ') ~ ')']) }}
{% endmacro %}
