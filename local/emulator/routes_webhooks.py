"""Web hooks: ``/speechtotext/webhooks...`` (operationIds ``WebHooks_List``, ``_Create``,
``_Get``, ``_Update``, ``_Delete``, ``_Ping``, ``_Test``).

Batch-surface operations: authentication, the batch quota, injected faults and the
``api-version`` check apply as to transcriptions. The registry, the challenge and the
callbacks live in ``webhooks.py``. Like transcriptions, a hook that is still ``NotStarted``
(its challenge pending) is answered with ``Retry-After``, deleting an unknown hook is 204, and
``Ping``/``Test`` answer 202 with ``Retry-After`` once the callbacks are queued (``Test``: 204
when no transcription went through any registered event yet, as the spec says).
"""

from __future__ import annotations

from uuid import UUID

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.emulator.errors import bad_request, not_found
from local.emulator.odata import FilterError, PropertyType, compile_filter
from local.emulator.pipeline import Context, Kind, endpoint, paginated
from local.emulator.webhooks import WebHook, parse_creation, parse_update

#: What the spec's ``WebHooks_List`` ``filter`` description lists.
HOOK_FILTER: dict[str, PropertyType] = {
    "displayName": "string",
    "description": "string",
    "createdDateTime": "datetime",
    "lastActionDateTime": "datetime",
    "status": "string",
    "webUrl": "string",
}


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def _hook(ctx: Context) -> WebHook:
    hook_id = ctx.request.path_params["id"]
    hook = ctx.emulator.webhooks.get(hook_id) if _is_uuid(hook_id) else None
    if hook is None:
        raise not_found(f"The web hook {hook_id} does not exist.")
    return hook


def _retry_after(ctx: Context, hooks: list[WebHook]) -> dict[str, str]:
    """``Retry-After`` while any of ``hooks`` waits for its challenge."""
    if any(hook.status == "NotStarted" for hook in hooks):
        return {"Retry-After": str(ctx.emulator.settings.retry_after_seconds)}
    return {}


def _accepted(ctx: Context) -> Response:
    retry = str(ctx.emulator.settings.retry_after_seconds)
    return Response(status_code=202, headers={"Retry-After": retry})


@endpoint("WebHooks_List", Kind.BATCH)
async def list_hooks(ctx: Context) -> Response:
    """Every web hook of the resource, oldest first, filtered and paged."""
    try:
        predicate = compile_filter(ctx.query("filter"), HOOK_FILTER)
    except FilterError as exc:
        raise bad_request("UnsupportedFilter", f"The filter is not supported: {exc}") from None
    hooks = [hook for hook in ctx.emulator.webhooks.all() if predicate(hook.filter_item())]
    body, shown = paginated(ctx, hooks, lambda h: h.document(ctx.base_url, ctx.api_version))
    return JSONResponse(body, headers=_retry_after(ctx, shown))


@endpoint("WebHooks_Create", Kind.BATCH)
async def create_hook(ctx: Context) -> Response:
    """Register a hook: 201 with the WebHook (``NotStarted``) and ``Location``; the
    challenge follows in the background."""
    spec = parse_creation(await ctx.json_body())
    hook = ctx.emulator.webhooks.create(spec, base_url=ctx.base_url, api_version=ctx.api_version)
    document = hook.document(ctx.base_url, ctx.api_version)
    return JSONResponse(document, status_code=201, headers={"Location": document["self"]})


@endpoint("WebHooks_Get", Kind.BATCH)
async def get_hook(ctx: Context) -> Response:
    """One web hook; ``Retry-After`` while its challenge is pending."""
    hook = _hook(ctx)
    return JSONResponse(
        hook.document(ctx.base_url, ctx.api_version), headers=_retry_after(ctx, [hook])
    )


@endpoint("WebHooks_Update", Kind.BATCH)
async def update_hook(ctx: Context) -> Response:
    """Change a hook; a new URL or other events, or any change of a Failed hook, challenge it
    again."""
    hook = _hook(ctx)
    body = await ctx.json_body(media_types=("application/json", "application/merge-patch+json"))
    media = ctx.request.headers.get("content-type", "").partition(";")[0].strip().lower()
    changes = parse_update(body, merge_patch=media == "application/merge-patch+json")
    ctx.emulator.webhooks.update(hook, changes)
    return JSONResponse(
        hook.document(ctx.base_url, ctx.api_version), headers=_retry_after(ctx, [hook])
    )


@endpoint("WebHooks_Delete", Kind.BATCH)
async def delete_hook(ctx: Context) -> Response:
    """204 whether the hook existed or not; its queued callbacks are dropped."""
    hook_id = ctx.request.path_params["id"]
    hook = ctx.emulator.webhooks.get(hook_id) if _is_uuid(hook_id) else None
    if hook is not None:
        ctx.emulator.webhooks.delete(hook)
    return Response(status_code=204)


@endpoint("WebHooks_Ping", Kind.BATCH)
async def ping_hook(ctx: Context) -> Response:
    """202: a ``ping`` with the hook itself goes to its URL (after a pending challenge)."""
    ctx.emulator.webhooks.ping(_hook(ctx))
    return _accepted(ctx)


@endpoint("WebHooks_Test", Kind.BATCH)
async def test_hook(ctx: Context) -> Response:
    """202 with one callback per registered event that has a last transcription, else 204."""
    if ctx.emulator.webhooks.test(_hook(ctx)):
        return _accepted(ctx)
    return Response(status_code=204)


def routes() -> list[Route]:
    """The web hook routes (the ``:ping``/``:test`` actions before ``{id}``)."""
    base = "/speechtotext/webhooks"
    return [
        Route(base, list_hooks, methods=["GET"]),
        Route(base, create_hook, methods=["POST"]),
        Route(f"{base}/{{id}}:ping", ping_hook, methods=["POST"]),
        Route(f"{base}/{{id}}:test", test_hook, methods=["POST"]),
        Route(f"{base}/{{id}}", get_hook, methods=["GET"]),
        Route(f"{base}/{{id}}", update_hook, methods=["PATCH"]),
        Route(f"{base}/{{id}}", delete_hook, methods=["DELETE"]),
    ]
