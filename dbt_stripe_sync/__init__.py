"""dbt-stripe-sync: dbt-native reverse ETL to Stripe."""

__version__ = "0.1.0"
