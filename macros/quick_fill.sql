{#-
  A ledger written before payload_quick_hash existed (or by a writer that left it null) keeps null
  quick hashes until each row changes, so the diff computes the md5 of every such row on every run.
  `run` fills them once (dbt_stripe_sync/quick_fill.py): each synced row whose payload_hash is the md5
  of its model row today gets the quick hash the diff would have written with it, in one UPDATE.
  Only a speed hint is written: a filled row is one the md5 already finds unchanged, and a quick hash
  that does not match is ignored by the diff (it falls back to the md5).
-#}

{#- rows the fill would look at (one is enough to know): synced, hashed, no quick hash -#}
{% macro quick_fill_needed_sql(ledger_relation, sync_name) %}
  {{ return('select 1 from ' ~ ledger_relation ~ ' where sync_name = ' ~ dbt_stripe_sync.sql_string(sync_name)
      ~ " and status = 'synced' and payload_hash is not null and payload_quick_hash is null limit 1") }}
{% endmacro %}

{#- the UPDATE, or none where the warehouse has no quick hash; arguments as diff_sql's -#}
{% macro quick_fill_sql(model_relation, ledger_relation, sync_name, key_column, columns, fingerprint, references, account={}) %}
  {%- set str = dbt.type_string() -%}
  {%- set q = dbt_stripe_sync.sql_string -%}
  {%- set src_cols = [] -%}
  {%- set hash_parts = [q(fingerprint)] -%}
  {%- for c in columns -%}
    {%- do src_cols.append(adapter.quote(c) ~ ' as c' ~ loop.index0) -%}
    {%- do hash_parts.append('s.c' ~ loop.index0) -%}
  {%- endfor -%}
  {%- for r in references -%}
    {%- do hash_parts.append('rf' ~ loop.index0 ~ '.stripe_id') -%}
  {%- endfor -%}
  {%- set quick = dbt_stripe_sync.quick_hash_sql(hash_parts + ['n.payload_hash']) -%}
  {%- if quick is none -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set ref_joins = dbt_stripe_sync.reference_joins(ledger_relation, columns, references, account) -%}
  {%- set sql -%}
update {{ ledger_relation }} as target
set payload_quick_hash = filled.quick
from (
    select n.source_key, {{ quick }} as quick
    from (
        select cast(m.{{ adapter.quote(key_column) }} as {{ str }}) as _dss_key, {{ src_cols | join(', ') }}
        from {{ model_relation }} as m
    ) s
    {{ ref_joins | join('\n    ') }}
    join (
        select source_key, payload_hash from {{ ledger_relation }} as ledger_rows
        where sync_name = {{ q(sync_name) }} and status = 'synced' and payload_hash is not null
            and payload_quick_hash is null
    ) n on n.source_key = s._dss_key
    where n.payload_hash = {{ dbt_stripe_sync.hash_sql(hash_parts) }}
) filled
where target.sync_name = {{ q(sync_name) }} and target.source_key = filled.source_key
    and target.status = 'synced' and target.payload_quick_hash is null
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
