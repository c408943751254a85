from dbt_stripe_sync.cli import main

raise SystemExit(main())
