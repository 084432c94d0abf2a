"""The submitter: queued files become a few big Speech jobs, within the request budget."""

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("submit_transcriptions")
@bp.timer_trigger(arg_name="timer", schedule="%SUBMIT_SCHEDULE%", run_on_startup=False)
async def submit_transcriptions(timer: func.TimerRequest) -> None:
    """One round: full groups, and groups whose oldest file has waited a window, are sent."""
    from shared.app_context import get_context
    from shared.pipeline.submitter import submit_once

    await submit_once(await get_context())
