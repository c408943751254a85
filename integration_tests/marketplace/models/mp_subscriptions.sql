select m.membership_key, m.email, m.price_key, m.quantity, s.stripe_account_id
from {{ ref('raw_memberships') }} m join {{ ref('raw_sellers') }} s using (seller_key)
