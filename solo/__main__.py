"""`python -m solo`: the `solo` command."""

from solo.cli.main import main

raise SystemExit(main())
