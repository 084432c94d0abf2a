"""The sweep: the containers compared with the ledger, so no file version is ever lost."""

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("sweep")
@bp.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", run_on_startup=False)
async def sweep(timer: func.TimerRequest) -> None:
    """One bounded reconciliation round (poison queue, pending versions, a page per pass)."""
    from shared.app_context import get_context
    from shared.pipeline.sweep import sweep_once

    await sweep_once(await get_context())
