"""Completion events: the ledger's outbox published to the events queue (and Event Grid)."""

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("publish_events")
@bp.timer_trigger(arg_name="timer", schedule="%EVENTS_SCHEDULE%", run_on_startup=False)
async def publish_events(timer: func.TimerRequest) -> None:
    """One page of the outbox: each terminal state as a CloudEvent, at least once."""
    from shared.app_context import get_context
    from shared.pipeline.events import publish_once

    await publish_once(await get_context())
