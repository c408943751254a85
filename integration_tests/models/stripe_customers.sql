-- One row per user who should exist as a Stripe customer.
select
    user_id,
    lower(email) as email,
    full_name,
    phone,
    street,
    city,
    country,
    plan_tier,
    locales,
    signup_date,
    is_vip,
    ltv
from {{ ref('raw_customers') }}
