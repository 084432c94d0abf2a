"""``python -m local up|down|status``: the same CLI as ``python -m local.stack``."""

from local.stack.cli import main

raise SystemExit(main())
