-- Buyers, as customers of the seller they bought from (the same person may buy from two sellers).
select b.buyer_key, b.email, b.full_name, s.stripe_account_id
from {{ ref('raw_buyers') }} b join {{ ref('raw_sellers') }} s using (seller_key)
