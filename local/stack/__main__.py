"""``python -m local.stack``: the stack's CLI (:mod:`local.stack.cli`)."""

from local.stack.cli import main

raise SystemExit(main())
