"""HTTP: the status page, server-rendered HTML for people (the status API answers programs).

Function-key protected like the API: a person opens ``/api/ui?code=<key>`` and every link
of the page carries that ``code`` on. In Azure, put App Service authentication (Entra ID) in
front of it as well.
"""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

bp = func.Blueprint()


@bp.function_name("ui")
@bp.route(route="ui", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def ui(req: Request) -> Response:
    """``GET /api/ui?state=&prefix=&container=&continuation=``: the list page."""
    from shared.http.context import with_context
    from shared.http.ui import list_page, problem_page

    return await with_context(
        lambda ctx: list_page(req, ctx), unavailable=lambda problem: problem_page(problem, req)
    )


@bp.function_name("ui_file")
@bp.route(route="ui/files/{*path}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def ui_file(req: Request) -> Response:
    """``GET /api/ui/files/{path}?container=``: one file's versions, transcript and links."""
    from shared.http.context import with_context
    from shared.http.ui import file_page, problem_page

    path = req.path_params.get("path", "")
    return await with_context(
        lambda ctx: file_page(req, ctx, path),
        unavailable=lambda problem: problem_page(problem, req),
    )
