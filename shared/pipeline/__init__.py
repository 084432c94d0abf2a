"""The pipeline: every uploaded file version to exactly one terminal state.

Layers, each importing only the ones above it:

* kernel — :mod:`~.ledger` (keys, typed records, table access), :mod:`~.clock`,
  :mod:`~.claims`, :mod:`~.reports`, :mod:`~.options`, :mod:`~.checks`,
  :mod:`~.submission`;
* stages, siblings that never import each other — :mod:`~.intake` (one uploaded file),
  :mod:`~.manifest` (a bulk request), :mod:`~.poller` (jobs to outputs), :mod:`~.queries`
  (what the status API reads).

``docs/architecture.md`` has the state machine these implement.
"""
