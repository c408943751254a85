-- Each seller's plan, as a product in the seller's account (the same chosen ID in every account).
select p.plan_key, p.product_id, p.plan_name, s.stripe_account_id
from {{ ref('raw_plans') }} p join {{ ref('raw_sellers') }} s using (seller_key)
