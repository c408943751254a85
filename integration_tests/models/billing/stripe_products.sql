-- Products, created under IDs the model chooses (prod_dss_*).
select product_key, product_id, name, description, tier
from {{ ref('raw_products') }}
