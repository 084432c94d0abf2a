"""HTTP: is the app able to work? Settings valid and the ledger reachable."""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def health(req: Request) -> Response:
    """``GET /api/health``: settings valid and the ledger reachable (503 JSON otherwise)."""
    from shared.http.context import with_context
    from shared.http.health import health as check
    from shared.http.health import unavailable

    return await with_context(check, unavailable=unavailable)
