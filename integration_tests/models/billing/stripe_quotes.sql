-- Draft quotes for a recurring price.
select quote_key, customer_email, price_key, quantity, header
from {{ ref('raw_quotes') }}
