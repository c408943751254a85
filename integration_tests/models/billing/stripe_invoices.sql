-- One-off invoices sent to the customer; the PO number is an invoice custom field.
select
    invoice_key,
    customer_email,
    description,
    days_until_due,
    'send_invoice' as collection_method,
    case when po_number is not null then 'PO number' end as po_label,
    po_number
from {{ ref('raw_invoices') }}
