"""The poller: due jobs are checked, finished ones written out as transcripts or reports."""

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("poll_transcriptions")
@bp.timer_trigger(arg_name="timer", schedule="%POLL_SCHEDULE%", run_on_startup=False)
async def poll_transcriptions(timer: func.TimerRequest) -> None:
    """One polling round; per-job backoff decides which jobs are due."""
    from shared.app_context import get_context
    from shared.pipeline.poller import poll_once

    await poll_once(await get_context())
