"""The Function App: one Blueprint per file in ``functions/``.

Only ``azure.functions`` and the binding extensions are imported here and in the
blueprints' module scope (the worker needs their types to index the functions); each
function imports the ``shared`` code it runs on first call, so a cold start pays only for
the function that was invoked.
"""

import azure.functions as func

from functions import (
    actions,
    bulk_intake,
    events,
    health,
    intake,
    poller,
    speech_http,
    speech_webhooks,
    stats,
    submitter,
    sweep,
    transcriptions,
    ui,
)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    intake.bp,
    bulk_intake.bp,
    submitter.bp,
    poller.bp,
    sweep.bp,
    speech_http.bp,
    speech_webhooks.bp,
    transcriptions.bp,
    actions.bp,
    stats.bp,
    ui.bp,
    events.bp,
    health.bp,
):
    app.register_functions(blueprint)
