-- Prices of the products above; a null billing_interval is a one-time price.
select price_key, product_key, unit_amount, currency, billing_interval, nickname
from {{ ref('raw_prices') }}
