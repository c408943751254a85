{#-
  The diff: the model joined with the ledger on the primary key, compared by a hash of the
  mapped payload, so that only new, changed, retried and deleted rows leave the warehouse.
  `sync:` references are resolved here too, from the referenced sync's ledger, with no API call.

  Every macro returns SQL text (dbt-stripe-sync executes it), so each warehouse can override
  one piece through adapter.dispatch without copying the rest.
-#}

{% macro sql_string(value) %}
  {{ return(adapter.dispatch('sql_string', 'dbt_stripe_sync')(value)) }}
{% endmacro %}

{% macro default__sql_string(value) %}
  {{ return("'" ~ (value | string).replace("'", "''") ~ "'") }}
{% endmacro %}

{% macro hash_sql(expressions) %}
  {{ return(adapter.dispatch('hash_sql', 'dbt_stripe_sync')(expressions)) }}
{% endmacro %}

{% macro default__hash_sql(expressions) %}
  {#- length-prefixed parts, so ('ab', 'c') and ('a', 'bc') never hash alike; null is its own marker -#}
  {%- set parts = [] -%}
  {%- for e in expressions -%}
    {%- set s = 'cast(' ~ e ~ ' as ' ~ dbt.type_string() ~ ')' -%}
    {%- do parts.append("coalesce(cast(length(" ~ s ~ ") as " ~ dbt.type_string() ~ ") || ':' || " ~ s ~ ", 'N')") -%}
  {%- endfor -%}
  {{ return('md5(' ~ parts | join(" || '|' || ") ~ ')') }}
{% endmacro %}

{% macro key_check_sql(model_relation, key_column) %}
  {{ return(adapter.dispatch('key_check_sql', 'dbt_stripe_sync')(model_relation, key_column)) }}
{% endmacro %}

{% macro default__key_check_sql(model_relation, key_column) %}
  {%- set k = adapter.quote(key_column) -%}
  {{ return(
    'select k, count(*) as n from (select cast(' ~ k ~ ' as ' ~ dbt.type_string() ~ ') as k from '
    ~ model_relation ~ ') keys group by k having count(*) > 1 or k is null order by 2 desc limit 5'
  ) }}
{% endmacro %}

{#- values of a column that more than one row carries (a streamed plan remembers only these) -#}
{% macro repeated_values_sql(model_relation, column) %}
  {{ return(adapter.dispatch('repeated_values_sql', 'dbt_stripe_sync')(model_relation, column)) }}
{% endmacro %}

{% macro default__repeated_values_sql(model_relation, column) %}
  {%- set c = adapter.quote(column) -%}
  {{ return('select ' ~ c ~ ' from ' ~ model_relation ~ ' where ' ~ c ~ ' is not null group by ' ~ c ~ ' having count(*) > 1') }}
{% endmacro %}

{% macro count_sql(model_relation) %}
  {{ return('select count(*) from ' ~ model_relation) }}
{% endmacro %}

{#- account: how a row names its Stripe Connect account, so `sync:` references resolve only within it:
    {'literal': 'acct_…'}, {'column_index': i} (the i-th of `columns`), or {} (the platform account) -#}
{#- part: none (every row, in key order: `run`), or, for a plan streamed in chunks (`plan`), in no
    particular order so the warehouse need not sort (nor hold) the whole diff: 'present' (rows in the
    model) or 'deleted' (ledger rows whose row left the model; not hashed) -#}
{% macro diff_sql(model_relation, ledger_relation, sync_name, key_column, columns, fingerprint, references, include_deletes, retry_rejected, account={}, part=none) %}
  {{ return(adapter.dispatch('diff_sql', 'dbt_stripe_sync')(model_relation, ledger_relation, sync_name, key_column, columns, fingerprint, references, include_deletes, retry_rejected, account, part)) }}
{% endmacro %}

{#- The join with the ledger reads only what decides whether a row needs work (key, hashes, status,
    Stripe ID); the ledger's other columns (payload_json above all) are joined back for the rows
    picked only, so unchanged rows never move their payloads through the join. -#}
{% macro default__diff_sql(model_relation, ledger_relation, sync_name, key_column, columns, fingerprint, references, include_deletes, retry_rejected, account={}, part=none) %}
  {%- set str = dbt.type_string() -%}
  {%- set q = dbt_stripe_sync.sql_string -%}
  {%- set src_cols = [] -%}
  {%- for c in columns -%}
    {%- do src_cols.append(adapter.quote(c) ~ ' as c' ~ loop.index0) -%}
  {%- endfor -%}
  {%- set hash_parts = [q(fingerprint)] -%}
  {%- for c in columns -%}{%- do hash_parts.append('s.c' ~ loop.index0) -%}{%- endfor -%}
  {%- set ref_cols = [] -%}
  {%- set ref_joins = [] -%}
  {%- if account.get('literal') -%}
    {%- set account_expr = q(account['literal']) -%}
  {%- elif account.get('column_index') is not none -%}
    {%- set account_expr = 'cast(s.c' ~ account['column_index'] ~ ' as ' ~ str ~ ')' -%}
  {%- else -%}
    {%- set account_expr = none -%}
  {%- endif -%}
  {%- for r in references -%}
    {%- set a = 'rf' ~ loop.index0 -%}
    {%- set key_expr = 'cast(s.c' ~ columns.index(r['column']) ~ ' as ' ~ str ~ ')' -%}
    {%- do ref_joins.append('left join ' ~ ledger_relation ~ ' as ' ~ a ~ ' on ' ~ a ~ '.sync_name = ' ~ q(r['sync'])
          ~ ' and ' ~ a ~ '.source_key = ' ~ key_expr ~ " and " ~ a ~ ".status = 'synced'"
          ~ ' and ' ~ (a ~ '.stripe_account is null' if account_expr is none else a ~ '.stripe_account = ' ~ account_expr)) -%}
    {%- do ref_cols.append(a ~ '.stripe_id as r' ~ loop.index0) -%}
    {%- do hash_parts.append(a ~ '.stripe_id') -%}
  {%- endfor -%}
  {%- set sql -%}
with src as (
    select cast({{ adapter.quote(key_column) }} as {{ str }}) as _dss_key, {{ src_cols | join(', ') }}
    from {{ model_relation }}
),
hashed as (
    select s.*{% for rc in ref_cols %}, {{ rc }}{% endfor %},
        {% if part == 'deleted' %}cast(null as {{ str }}){% else %}{{ dbt_stripe_sync.hash_sql(hash_parts) }}{% endif %} as _dss_hash
    from src s
    {{ ref_joins | join('\n    ') }}
),
led as (
    select source_key, status, payload_hash, attempt_hash, stripe_id
    from {{ ledger_relation }} as ledger_rows where sync_name = {{ q(sync_name) }}
),
picked as (
    select
        coalesce(h._dss_key, l.source_key) as _dss_key,
        h._dss_hash,
        case
            when h._dss_key is null then 'deleted'
            when l.source_key is null then 'new'
            when l.status in ('deleted', 'archived', 'left') then 'reappeared'
            when l.status in ('pending', 'failed', 'rejected') then 'retry'
            else 'changed'
        end as _dss_change,
        l.source_key as _dss_ledger_key
        {% for c in columns %}, h.c{{ loop.index0 }}{% endfor %}
        {% for r in references %}, h.r{{ loop.index0 }}{% endfor %}
    from hashed h
    full outer join led l on h._dss_key = l.source_key
    where
        (h._dss_key is not null and l.source_key is null)
        or (h._dss_key is not null and l.status in ('pending', 'failed'))
        or (h._dss_key is not null and l.status = 'rejected'
            and ({{ 'true' if retry_rejected else 'false' }} or l.attempt_hash is null or l.attempt_hash <> h._dss_hash))
        or (h._dss_key is not null and l.status = 'synced'
            and (l.payload_hash is null or l.payload_hash <> h._dss_hash))
        or (h._dss_key is not null and l.status in ('deleted', 'archived', 'left'))
        {% if include_deletes -%}
        or (h._dss_key is null and l.status in ('synced', 'failed', 'rejected')
            and l.stripe_id is not null)
        or (h._dss_key is null and l.status = 'pending')
        {%- endif %}
)
select
    p._dss_key,
    p._dss_hash,
    p._dss_change,
    {% for name, type in dbt_stripe_sync.ledger_columns() %}lf.{{ adapter.quote(name) }} as {{ adapter.quote('_l_' ~ name) }},
    {% endfor %}
    {% for c in columns %}p.c{{ loop.index0 }}, {% endfor %}
    {% for r in references %}p.r{{ loop.index0 }}, {% endfor %}
    1 as _dss_end
from picked p
left join {{ ledger_relation }} as lf
    on p._dss_ledger_key is not null and lf.sync_name = {{ q(sync_name) }} and lf.source_key = p._dss_ledger_key
{% if part == 'present' -%}
where p._dss_change <> 'deleted'
{%- elif part == 'deleted' -%}
where p._dss_change = 'deleted'
{%- else -%}
order by 1
{%- endif %}
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
