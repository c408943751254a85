-- Invoice lines: priced by a one-time price or by amount + currency; no invoice_key = pending item.
select item_key, customer_email, invoice_key, price_key, amount, currency, description
from {{ ref('raw_invoice_items') }}
