"""Models: ``/speechtotext/models/base[/{id}]`` and ``/speechtotext/models[/{id}]``.

Base models are the emulator's fixed catalog; custom models are those configured with
``EMULATOR_CUSTOM_MODELS``. Training, copying and manifests are not emulated (404).
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.emulator.catalog import Model, model_document
from local.emulator.errors import bad_request, not_found
from local.emulator.odata import ENTITY_PROPERTIES, FilterError, compile_filter
from local.emulator.pipeline import Context, Kind, endpoint, paginated


def _listed(ctx: Context, models: tuple[Model, ...], *, custom: bool) -> JSONResponse:
    try:
        predicate = compile_filter(ctx.query("filter"), ENTITY_PROPERTIES)
    except FilterError as exc:
        raise bad_request("UnsupportedFilter", f"The filter is not supported: {exc}") from None
    selected = [m for m in models if predicate(m.filter_item())]
    body, page = paginated(
        ctx,
        selected,
        lambda m: model_document(
            m, base_url=ctx.base_url, api_version=ctx.api_version, custom=custom
        ),
    )
    headers = {}
    if custom and any(m.status in ("NotStarted", "Running") for m in page):
        headers["Retry-After"] = str(ctx.emulator.settings.retry_after_seconds)
    return JSONResponse(body, headers=headers)


@endpoint("Models_ListBaseModels", Kind.BATCH)
async def list_base_models(ctx: Context) -> Response:
    """The base models, oldest first (``filter=locale eq 'en-US'`` works)."""
    return _listed(ctx, ctx.emulator.catalog.base_models, custom=False)


def _one_model(ctx: Context, *, custom: bool) -> Response:
    """One base or custom model; a custom one still training gets ``Retry-After``."""
    model_id = ctx.request.path_params["id"]
    catalog = ctx.emulator.catalog
    model = catalog.custom_model(model_id) if custom else catalog.base_model(model_id)
    if model is None:
        kind = "model" if custom else "base model"
        raise not_found(f"The {kind} {model_id} does not exist.")
    headers = {}
    if custom and model.status in ("NotStarted", "Running"):
        headers["Retry-After"] = str(ctx.emulator.settings.retry_after_seconds)
    return JSONResponse(
        model_document(model, base_url=ctx.base_url, api_version=ctx.api_version, custom=custom),
        headers=headers,
    )


@endpoint("Models_GetBaseModel", Kind.BATCH)
async def get_base_model(ctx: Context) -> Response:
    """One base model."""
    return _one_model(ctx, custom=False)


@endpoint("Models_ListCustomModels", Kind.BATCH)
async def list_custom_models(ctx: Context) -> Response:
    """The configured custom models."""
    return _listed(ctx, ctx.emulator.catalog.custom_models, custom=True)


@endpoint("Models_GetCustomModel", Kind.BATCH)
async def get_custom_model(ctx: Context) -> Response:
    """One configured custom model."""
    return _one_model(ctx, custom=True)


def routes() -> list[Route]:
    """The model routes (``/models/base`` before ``/models/{id}``)."""
    return [
        Route("/speechtotext/models/base", list_base_models, methods=["GET"]),
        Route("/speechtotext/models/base/{id}", get_base_model, methods=["GET"]),
        Route("/speechtotext/models", list_custom_models, methods=["GET"]),
        Route("/speechtotext/models/{id}", get_custom_model, methods=["GET"]),
    ]
