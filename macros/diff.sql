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
    {%- set s = dbt_stripe_sync.binary_text('cast(' ~ e ~ ' as ' ~ dbt.type_string() ~ ')') -%}
    {%- do parts.append("coalesce(cast(length(" ~ s ~ ") as " ~ dbt.type_string() ~ ") || ':' || " ~ s ~ ", 'N')") -%}
  {%- endfor -%}
  {{ return('md5(' ~ parts | join(" || '|' || ") ~ ')') }}
{% endmacro %}

{#- A text with its collation set to the warehouse's byte order, so values of columns that carry
    different collations hash together (outside attack 12 #2): DuckDB fails to bind one concat of a
    `collate nocase` and a `collate noaccent` column ("Cannot combine types with different
    collation"), and PostgreSQL fails the comparison of their md5 with payload_hash ("could not
    determine which collation to use") when two columns carry different non-default collations
    (`collate "C"`, `collate "POSIX"`). DuckDB's hash() of a collated text also applies the collation
    first. The bytes, and so every md5 of them, stay what they were (tests/integration/test_collations.py). -#}
{% macro binary_text(expression) %}
  {{ return(adapter.dispatch('binary_text', 'dbt_stripe_sync')(expression)) }}
{% endmacro %}

{% macro default__binary_text(expression) %}
  {{ return(expression) }}
{% endmacro %}

{% macro duckdb__binary_text(expression) %}
  {{ return('(' ~ expression ~ ' collate c)') }}
{% endmacro %}

{% macro postgres__binary_text(expression) %}
  {{ return('(' ~ expression ~ ' collate "C")') }}
{% endmacro %}

{#- The same string hashed as default__hash_sql, built by one concat instead of a chain of `||`
    (each `||` makes a string of its own): half the CPU of hashing a million rows. Each value adds
    three arguments to that one concat — its length or 'N', ':' unless null, the value (concat skips
    a null) — rather than a concat of its own per value (~0.1 s less of ~1.2 s at 1M rows); proved
    the same hash by tests/integration/test_row_hash.py. -#}
{% macro duckdb__hash_sql(expressions) %}
  {%- set parts = [] -%}
  {%- for e in expressions -%}
    {%- set s = dbt_stripe_sync.binary_text('cast(' ~ e ~ ' as ' ~ dbt.type_string() ~ ')') -%}
    {%- do parts.append("coalesce(cast(length(" ~ s ~ ") as " ~ dbt.type_string() ~ "), 'N'), case when " ~ s ~ " is null then '' else ':' end, " ~ s) -%}
  {%- endfor -%}
  {{ return('md5(concat(' ~ parts | join(", '|', ") ~ '))') }}
{% endmacro %}

{#- A cheap filter in front of hash_sql: a 64-bit hash of the same values' text (bigint), or none
    where the warehouse has no cheap hash (the diff then compares every row by hash_sql alone). The
    ledger keeps it beside payload_hash (payload_quick_hash), computed over the row's values AND the
    payload_hash it was written with, so it vouches for a row only while that payload_hash stands: a
    row whose quick hash matches is unchanged; any other row (quick hash null, stale, from another
    DuckDB version) is compared by hash_sql as before. Values are hashed as text, as hash_sql sees
    them: DuckDB's native hash(true) = hash(1), while their texts (and so payload_hash) differ. -#}
{% macro quick_hash_sql(expressions) %}
  {{ return(adapter.dispatch('quick_hash_sql', 'dbt_stripe_sync')(expressions)) }}
{% endmacro %}

{% macro default__quick_hash_sql(expressions) %}
  {{ return(none) }}
{% endmacro %}

{#- Each value's text as bytes (`encode`): DuckDB's hash() of a text applies its collation first, so
    under `collate nocase` (or a profile's default_collation) 'Ada' and 'ADA' hashed alike and a
    case-only edit was never sent (outside attack 12); md5 and the bytes ignore collations. -#}
{% macro duckdb__quick_hash_sql(expressions) %}
  {%- set parts = [] -%}
  {%- for e in expressions -%}
    {%- do parts.append('encode(cast(' ~ e ~ ' as ' ~ dbt.type_string() ~ '))') -%}
  {%- endfor -%}
  {{ return('cast(hash(' ~ parts | join(', ') ~ ') >> 1 as bigint)') }}
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

{#- One of `count` partitions of the diff by its key (a string expression): `plan` on an embedded
    warehouse joins a large ledger a partition at a time, so each hash join builds 1/count of it.
    none: this warehouse does not partition (the diff runs whole). -#}
{% macro partition_sql(expression, count, index) %}
  {{ return(adapter.dispatch('partition_sql', 'dbt_stripe_sync')(expression, count, index)) }}
{% endmacro %}

{% macro default__partition_sql(expression, count, index) %}
  {{ return(none) }}
{% endmacro %}

{% macro duckdb__partition_sql(expression, count, index) %}
  {{ return('hash(' ~ expression ~ ') % ' ~ count ~ ' = ' ~ index) }}
{% endmacro %}

{% macro postgres__partition_sql(expression, count, index) %}
  {{ return('mod(abs(hashtext(' ~ expression ~ ')::bigint), ' ~ count ~ ') = ' ~ index) }}
{% endmacro %}

{#- The joins that resolve a row's `sync:` references (rf0, rf1, …: the referenced sync's ledger row,
    synced, in the row's account) onto the model's rows `s` (columns c0, c1, …): the diff and the
    quick hashes' fill (quick_fill.sql) hash the same Stripe IDs. -#}
{% macro reference_joins(ledger_relation, columns, references, account) %}
  {%- set str = dbt.type_string() -%}
  {%- set q = dbt_stripe_sync.sql_string -%}
  {%- set joins = [] -%}
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
    {%- do joins.append('left join ' ~ ledger_relation ~ ' as ' ~ a ~ ' on ' ~ a ~ '.sync_name = ' ~ q(r['sync'])
          ~ ' and ' ~ a ~ '.source_key = ' ~ key_expr ~ " and " ~ a ~ ".status = 'synced'"
          ~ ' and ' ~ (a ~ '.stripe_account is null' if account_expr is none else a ~ '.stripe_account = ' ~ account_expr)) -%}
  {%- endfor -%}
  {{ return(joins) }}
{% endmacro %}

{#- account: how a row names its Stripe Connect account, so `sync:` references resolve only within it:
    {'literal': 'acct_…'}, {'column_index': i} (the i-th of `columns`), or {} (the platform account) -#}
{#- part: none (every row, in key order: `run`), or, for a plan streamed in chunks (`plan`), in no
    particular order so the warehouse need not sort (nor hold) the whole diff: 'present' (rows in the
    model) or 'deleted' (ledger rows whose row left the model; not hashed) -#}
{#- partition: none, or {'count': n, 'index': i} (partition_sql): only the rows of that partition -#}
{% macro diff_sql(model_relation, ledger_relation, sync_name, key_column, columns, fingerprint, references, include_deletes, retry_rejected, account={}, part=none, partition=none) %}
  {{ return(adapter.dispatch('diff_sql', 'dbt_stripe_sync')(model_relation, ledger_relation, sync_name, key_column, columns, fingerprint, references, include_deletes, retry_rejected, account, part, partition)) }}
{% endmacro %}

{#- The join with the ledger reads only what decides whether a row needs work (key, hashes, status,
    Stripe ID); the ledger's other columns (payload_json above all) are joined back for the rows
    picked only, so unchanged rows never move their payloads through the join.
    Rows still in the model (`present`) are a left join of the model with the ledger; rows that left
    it (`deleted`) an anti-join of the ledger with the model's keys alone, so neither side of either
    join carries more than it needs. `run`'s whole diff (part none, deletes included) finds both in
    one pass instead: a full outer join of the model with the same narrow ledger rows (the ledger
    stays the build side: what it builds is what the left join built), whose ledger-only rows are the
    ones that left the model; one scan of each and one join fewer (~10 % of the 1M diff's CPU). -#}
{% macro default__diff_sql(model_relation, ledger_relation, sync_name, key_column, columns, fingerprint, references, include_deletes, retry_rejected, account={}, part=none, partition=none) %}
  {%- set str = dbt.type_string() -%}
  {%- set q = dbt_stripe_sync.sql_string -%}
  {%- set src_cols = [] -%}
  {%- for c in columns -%}
    {%- do src_cols.append(adapter.quote(c) ~ ' as c' ~ loop.index0) -%}
  {%- endfor -%}
  {#- the row's hashed values as the join with the ledger sees them (s, rfN), as `present` hands them
      on (h), and as the outer select sees them (p) -#}
  {%- set hash_parts = [q(fingerprint)] -%}
  {%- set present_parts = [q(fingerprint)] -%}
  {%- set picked_parts = [q(fingerprint)] -%}
  {%- for c in columns -%}
    {%- do hash_parts.append('s.c' ~ loop.index0) -%}
    {%- do present_parts.append('h.c' ~ loop.index0) -%}
    {%- do picked_parts.append('p.c' ~ loop.index0) -%}
  {%- endfor -%}
  {%- set ref_cols = [] -%}
  {%- set ref_joins = dbt_stripe_sync.reference_joins(ledger_relation, columns, references, account) -%}
  {%- for r in references -%}
    {%- set a = 'rf' ~ loop.index0 -%}
    {%- do ref_cols.append(a ~ '.stripe_id as r' ~ loop.index0) -%}
    {%- do hash_parts.append(a ~ '.stripe_id') -%}
    {%- do present_parts.append('h.r' ~ loop.index0) -%}
    {%- do picked_parts.append('p.r' ~ loop.index0) -%}
  {%- endfor -%}
  {%- set row_hash = dbt_stripe_sync.hash_sql(hash_parts) -%}
  {%- set quick = dbt_stripe_sync.quick_hash_sql(hash_parts + ['l.payload_hash']) -%}
  {%- set picked_quick = dbt_stripe_sync.quick_hash_sql(picked_parts + ['p._dss_hash']) -%}
  {%- set present = part in (none, 'present') -%}
  {%- set deleted = part == 'deleted' or (part is none and include_deletes) -%}
  {%- set one_pass = present and deleted -%}
  {%- set left_model -%}
    l.source_key is not null and s._dss_key is null and ((l.status in ('synced', 'failed', 'rejected') and l.stripe_id is not null) or l.status = 'pending')
  {%- endset -%}
  {#- the model's rows and the sync's ledger rows (of one partition), inlined where used: a CTE used
      twice (present and deleted in one query) would be materialized whole by some warehouses -#}
  {%- set model_key = 'cast(m.' ~ adapter.quote(key_column) ~ ' as ' ~ str ~ ')' -%}
  {%- set model_where -%}
    {%- if partition %} where {{ dbt_stripe_sync.partition_sql(model_key, partition['count'], partition['index']) }}{% endif -%}
  {%- endset -%}
  {%- set led -%}
    select source_key, status, payload_hash, attempt_hash, stripe_id{% if quick %}, payload_quick_hash{% endif %}
        from {{ ledger_relation }} as ledger_rows where sync_name = {{ q(sync_name) }}
        {%- if partition %} and {{ dbt_stripe_sync.partition_sql('source_key', partition['count'], partition['index']) }}{% endif -%}
  {%- endset -%}
  {%- set sql -%}
with
{%- if present %}
src as (
    select {{ model_key }} as _dss_key, {{ src_cols | join(', ') }}
    from {{ model_relation }} as m{{ model_where }}
),
{#- the rows that need work: hash_sql (md5, the ledger's payload_hash) is computed only for rows the
    quick hash does not vouch for (a case, so no optimizer evaluates it first), then again in
    `picked` for the rows that pass (~1 % of a large model in a steady run) -#}
present as (
    select s.*{% for rc in ref_cols %}, {{ rc }}{% endfor %}, l.source_key as _dss_ledger_key, l.status as _dss_status
    from src s
    {{ ref_joins | join('\n    ') }}
    {{ 'full' if one_pass else 'left' }} join ({{ led }}) l on s._dss_key = l.source_key
    where
{%- if quick %}
        case
{%- if one_pass %}
        when s._dss_key is null then {{ left_model }}
{%- endif %}
        when l.status = 'synced' and l.payload_hash is not null and l.payload_quick_hash is not null
            and l.payload_quick_hash = {{ quick }} then false
        else (
{%- elif one_pass %}
        ({{ left_model }}) or (s._dss_key is not null and (
{%- endif %}
        l.source_key is null
        or l.status in ('pending', 'failed', 'deleted', 'archived', 'left')
        or (l.status = 'rejected'
            and ({{ 'true' if retry_rejected else 'false' }} or l.attempt_hash is null or l.attempt_hash <> {{ row_hash }}))
        or (l.status = 'synced' and (l.payload_hash is null or l.payload_hash <> {{ row_hash }}))
{%- if quick %}
        ) end
{%- elif one_pass %}
        ))
{%- endif %}
),
{%- endif %}
picked as (
{%- if present %}
    select
{%- if one_pass %}
        coalesce(h._dss_key, h._dss_ledger_key) as _dss_key,
        case when h._dss_key is not null then {{ dbt_stripe_sync.hash_sql(present_parts) }} end as _dss_hash,
{%- else %}
        h._dss_key,
        {{ dbt_stripe_sync.hash_sql(present_parts) }} as _dss_hash,
{%- endif %}
        case
{%- if one_pass %}
            when h._dss_key is null then 'deleted'
{%- endif %}
            when h._dss_ledger_key is null then 'new'
            when h._dss_status in ('deleted', 'archived', 'left') then 'reappeared'
            when h._dss_status in ('pending', 'failed', 'rejected') then 'retry'
            else 'changed'
        end as _dss_change,
        h._dss_ledger_key
        {% for c in columns %}, h.c{{ loop.index0 }}{% endfor %}
        {% for r in references %}, h.r{{ loop.index0 }}{% endfor %}
    from present h
{%- endif %}
{%- if deleted and not one_pass %}
    select
        l.source_key as _dss_key,
        cast(null as {{ str }}) as _dss_hash,
        'deleted' as _dss_change,
        l.source_key as _dss_ledger_key
        {% for c in columns %}, null as c{{ loop.index0 }}{% endfor %}
        {% for r in references %}, cast(null as {{ str }}) as r{{ loop.index0 }}{% endfor %}
    from ({{ led }}) l
    left join (select {{ model_key }} as _dss_key from {{ model_relation }} as m{{ model_where }}) k
        on k._dss_key = l.source_key
    where
        k._dss_key is null
        and ((l.status in ('synced', 'failed', 'rejected') and l.stripe_id is not null) or l.status = 'pending')
{%- endif %}
)
select
    p._dss_key,
    p._dss_hash,
    p._dss_change,
    {% if picked_quick %}case when p._dss_hash is not null then {{ picked_quick }} end{% else %}cast(null as {{ dbt.type_bigint() }}){% endif %} as _dss_quick,
    {% for name, type in dbt_stripe_sync.ledger_columns() %}lf.{{ adapter.quote(name) }} as {{ adapter.quote('_l_' ~ name) }},
    {% endfor %}
    {% for c in columns %}p.c{{ loop.index0 }}, {% endfor %}
    {% for r in references %}p.r{{ loop.index0 }}, {% endfor %}
    1 as _dss_end
from picked p
left join {{ ledger_relation }} as lf
    on p._dss_ledger_key is not null and lf.sync_name = {{ q(sync_name) }} and lf.source_key = p._dss_ledger_key
{% if part is none -%}
order by 1
{%- endif %}
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
