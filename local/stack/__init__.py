"""Start, stop and inspect the offline stack: Azurite, identity, Speech emulator, functions host.

``python -m local.stack up|down|status [--state-dir DIR] [--services a,b] [--app M:A]
[--timeout S]``

The ``functions`` service (the local functions host, :mod:`local.host`, serving
``function_app:app`` or ``--app``) starts last, with the app settings of a Function App
wired to this stack (:func:`function_app_settings`). ``Stack`` starts it only when asked
(``services=``); the CLI includes it by default once ``function_app.py`` exists (or with
``--app``).

Everything a stack owns lives in one state dir (default ``<repo>/.local``, or
``LOCAL_STATE_DIR``)::

    certs/      CA, server certificate, CA bundle           (local.certs)
    identity/   ids, IDENTITY_HEADER secret, JWT signing key (local.identity)
    azurite/    Azurite's data
    emulator/   the Speech emulator's data
    functions/  the functions host's keys, blob receipts, poison-spool.jsonl (local.host)
    logs/       <service>.log: each service's stdout and stderr
    pids/       <service>.pid
    stack.json  per-stack secrets: the emulator key, the fake subscription id
    stack.env   what clients need: endpoints, IDENTITY_*, CA bundle, app settings

Each service runs in its own session (process group), so ``down`` stops its whole tree.
A pid file is trusted only if that process's command line still carries the marker this
stack gave it, so a recycled pid of an unrelated process is never signalled.

Modules: :mod:`~local.stack.services` (names, paths, defaults), :mod:`~local.stack.ports`,
:mod:`~local.stack.info` (secrets, ``stack.env``, status), :mod:`~local.stack.processes`,
:mod:`~local.stack.supervisor` (``Stack``) and :mod:`~local.stack.cli`.
"""

from local.stack.errors import StackError
from local.stack.info import ServiceStatus, StackInfo, StackSecrets
from local.stack.ports import PORT_ENV_VARS, Ports
from local.stack.services import (
    ALL_SERVICES,
    AZURITE,
    EMULATOR,
    FUNCTIONS,
    IDENTITY,
    REPO_ROOT,
    SERVICES,
    STACK_HEADER,
    default_services,
)
from local.stack.supervisor import Stack

__all__ = [
    "ALL_SERVICES",
    "AZURITE",
    "EMULATOR",
    "FUNCTIONS",
    "IDENTITY",
    "PORT_ENV_VARS",
    "REPO_ROOT",
    "SERVICES",
    "STACK_HEADER",
    "Ports",
    "ServiceStatus",
    "Stack",
    "StackError",
    "StackInfo",
    "StackSecrets",
    "default_services",
]
