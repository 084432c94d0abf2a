"""Bulk intake: a JSON manifest in the requests container becomes jobs of up to 1000 files."""

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

bp = func.Blueprint()


@bp.function_name("bulk_intake")
@bp.blob_trigger(
    arg_name="client",
    path="%REQUESTS_CONTAINER%/{name}",
    connection="AudioStorage",
    source=func.BlobSource.EVENT_GRID,
)
async def bulk_intake(client: blob.BlobClient) -> None:
    """Validate the manifest and submit its files; an invalid one gets an error report."""
    from shared.app_context import get_context
    from shared.pipeline.manifest import handle_manifest_blob

    await handle_manifest_blob(await get_context(), client.container_name, client.blob_name)
