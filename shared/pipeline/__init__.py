"""The pipeline: every uploaded file version to exactly one terminal state.

Layers, each importing only the ones above it:

* kernel — :mod:`~.ledger` (keys, typed records, table access), :mod:`~.clock`,
  :mod:`~.claims` (and the frame of every intake), :mod:`~.reports`, :mod:`~.outputs`,
  :mod:`~.options`, :mod:`~.checks`, :mod:`~.submission`, :mod:`~.manifest_document`;
* stages, siblings that never import each other — :mod:`~.intake` (one uploaded file),
  :mod:`~.manifest` (a bulk request), :mod:`~.poller` with :mod:`~.finishing` (jobs to
  outputs, retries, reports), :mod:`~.retry` (a version submitted again), :mod:`~.queries`
  (what the status API reads);
* reconciliation — :mod:`~.sweep` with :mod:`~.poison`: the containers are the truth.

``docs/architecture.md`` has the state machine these implement.
"""
