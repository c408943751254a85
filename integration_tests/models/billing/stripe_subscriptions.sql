-- One subscription per customer: a plan price plus an optional add-on item.
select subscription_key, customer_email, price_key, quantity, addon_price_key, addon_quantity, deal_note
from {{ ref('raw_subscriptions') }}
