from dbt_stripe_sync.emulator.cli import main

raise SystemExit(main())
