{#-
  `by: email` references resolved from the ledger: a customer this tool synced is found by the
  email its ledger payload holds, with no API call. Each macro returns SQL text; override one for
  your warehouse with adapter.dispatch.
-#}

{% macro json_text_sql(column, key) %}
  {{ return(adapter.dispatch('json_text_sql', 'dbt_stripe_sync')(column, key)) }}
{% endmacro %}

{#- SQL:2016 JSON_VALUE; DuckDB and PostgreSQL have their own spelling below -#}
{% macro default__json_text_sql(column, key) %}
  {{ return("json_value(" ~ column ~ ", '$." ~ key ~ "')") }}
{% endmacro %}

{% macro duckdb__json_text_sql(column, key) %}
  {{ return("json_extract_string(" ~ column ~ ", '$." ~ key ~ "')") }}
{% endmacro %}

{% macro postgres__json_text_sql(column, key) %}
  {{ return("(cast(" ~ column ~ " as json) ->> '" ~ key ~ "')") }}
{% endmacro %}

{#- account: the Stripe Connect account whose customers are wanted (a literal; none = the platform's) -#}
{% macro synced_customer_emails_sql(ledger_relation, placeholders, account=none) %}
  {{ return(adapter.dispatch('synced_customer_emails_sql', 'dbt_stripe_sync')(ledger_relation, placeholders, account)) }}
{% endmacro %}

{#- (email, stripe_id) of synced customers whose email is one of the bound values, the first synced first -#}
{% macro default__synced_customer_emails_sql(ledger_relation, placeholders, account=none) %}
  {%- set sql -%}
select email, stripe_id
from (
    select {{ dbt_stripe_sync.json_text_sql('payload_json', 'email') }} as email, stripe_id,
           first_synced_at, sync_name, source_key
    from {{ ledger_relation }} as ledger_rows
    where object_type = 'customer' and status = 'synced' and stripe_id is not null
      and {{ 'stripe_account is null' if account is none else 'stripe_account = ' ~ dbt_stripe_sync.sql_string(account) }}
) as synced_customers
where email in ({{ placeholders | join(', ') }})
order by email, first_synced_at, sync_name, source_key
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
