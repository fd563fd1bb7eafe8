from gatewayd.cli.main import main

raise SystemExit(main())
