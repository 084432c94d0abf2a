"""A function app that cannot be imported: the stack must fail ``up`` and show why."""

raise RuntimeError("sample import failure: this app is broken on purpose")
