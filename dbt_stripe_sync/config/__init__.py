"""The `stripe_sync` meta contract: JSON Schema check, typed config, friendly errors."""
