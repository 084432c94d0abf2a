"""A local Azure Functions host for Python v2-model apps (Core Tools cannot be installed here).

``python -m local.host --app function_app:app`` imports the app, discovers its functions
with ``app.get_functions()`` and runs them in one process:

* HTTP triggers on ``http://127.0.0.1:<port>/api/<route>`` with function keys
  (:mod:`local.host.web`), HTTP streams (FastAPI ``Request`` / ``Response``) unbuffered;
* timer triggers from their NCRONTAB schedules (:mod:`local.host.timers`);
* blob triggers, ``source=EventGrid`` included, by watching the container, at least once,
  with retries (:mod:`local.host.blob_trigger`) and, as in Azure, a message on the Storage
  queue ``webjobs-blobtrigger-poison`` for a blob that keeps failing (:mod:`local.host.poison`).

Other trigger types are listed as skipped and not run. The offline stack starts it as its
``functions`` service (``local.stack``); ``__main__`` documents the command line. The
host and the stack never import each other: what both need (the host keys, the app
settings of a stack) lives in the leaf modules :mod:`local.keys` and
:mod:`local.app_settings`.
"""
