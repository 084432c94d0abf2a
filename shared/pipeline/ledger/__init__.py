"""The job ledger: which blob version became which Speech job, on Azure Table Storage.

Layout (one table, ``settings.ledger_table``)::

    PartitionKey     RowKey                                  what
    src|<container>  <enc(path)>|<enc(etag)>[|m<origin>]     one source blob version (+ request)
    active           job|<job id>                            a job still being polled
    active           pending|<hash of the source keys>       a version someone must move on
    active           sweep|<container>                       where the container's sweep stands
    active           budget|<slot>                           Speech requests used in a 10 s window
    active           batch|<id>                              a job being submitted, its members
    active           outbox|<event id>                       a terminal state's event to publish
    stats            state|<shard>                           versions per state now (sharded)
    stats            day|<yyyy-mm-dd>|<shard>                terminal files, audio s per route
    stats            prefix|<enc(top-level prefix)>|<shard>  the same per first path segment
    groups           <group id>                              a queue group: shared job options
    queue|<group>    <due ticks>|<source digest>             one queued version, in due order

* **Source rows** are permanent: the history the status API reads. ``enc`` percent-encodes
  the characters Table Storage forbids in keys (``/ \\ # ?``, control characters) plus ``%``
  and the separator ``|``, one character at a time, so the encoded form of a path prefix is
  a prefix of the encoded path and prefix queries are key-range scans. The raw path is a
  property. Paths too long for a key keep their first :data:`MAX_KEY_PATH_UNITS` units and a
  hash. A file named by a manifest gets ``|m<hash of the manifest version>``: the same
  audio asked for again by a manifest (another destination, other options) is another
  request, not a duplicate of the per-file upload.
* **The ``active`` partition** holds only what is in flight: job rows from submission until
  the poller has finished them (then they are deleted; the source rows keep the record),
  an index row per pending version (claimed, or waiting to be submitted again) so the
  sweep finds them without scanning every source row ever written, and one cursor per
  swept container.

Every write is conditional: create-if-absent, or merge with the ETag read before
(``MatchConditions.IfNotModified``), so two instances can never both act on one row. The
pending index alone is upserted: it only points, the source row decides.
The sync SDK runs in worker threads and is imported lazily (cold start).

* **Counters and the outbox** hang on the one write path of source rows
  (``SourceRows._write_source``): an outbox row is written before a version reaches a
  terminal state, and every state change is counted after it, in counter rows sharded
  eight ways (a writer merges one random shard conditionally; a reader sums them with one
  range query). ``stats`` is a partition of its own so counting never slows the busy
  ``active`` partition; day rows sort by date, so a month is one range query.

Modules: :mod:`~.keys` (partitions, row keys, encoding), :mod:`~.records` (typed rows and
their storage form; job rows and batches in :mod:`~.job_records`), :mod:`~.table`
(conditional table access), and one module per row family over it: :mod:`~.sources`
(with :mod:`~.source_reads`), :mod:`~.pending`, :mod:`~.jobs`, :mod:`~.cursors`,
:mod:`~.budget`, :mod:`~.queue`, :mod:`~.outbox`, :mod:`~.counters`, :mod:`~.hooks`; and
the moves of :mod:`~.actions` (an operator's re-runs and cancellations) and :mod:`~.lanes`
(a fast-lane file handed back to batch).
No column name is written outside this package.
"""

from shared.pipeline.ledger.actions import ActionRows
from shared.pipeline.ledger.budget import BudgetRows
from shared.pipeline.ledger.cursors import SweepCursors
from shared.pipeline.ledger.hooks import HookRows
from shared.pipeline.ledger.jobs import JobRows
from shared.pipeline.ledger.lanes import LaneRows
from shared.pipeline.ledger.queue import QueueRows
from shared.pipeline.ledger.sources import SourceRows


class Ledger(
    ActionRows, LaneRows, SourceRows, JobRows, QueueRows, SweepCursors, BudgetRows, HookRows
):
    """Every read and conditional write of the ledger table."""


__all__ = ["Ledger"]
