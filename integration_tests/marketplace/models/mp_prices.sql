select p.price_key, p.plan_key, p.unit_amount, p.currency, p.billing_interval, s.stripe_account_id
from {{ ref('raw_plan_prices') }} p join {{ ref('raw_sellers') }} s using (seller_key)
