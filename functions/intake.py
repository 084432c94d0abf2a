"""Audio intake: a new or changed blob in the input container becomes one Speech job."""

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

bp = func.Blueprint()


@bp.function_name("audio_intake")
@bp.blob_trigger(
    arg_name="client",
    path="%INPUT_CONTAINER%/{name}",
    connection="AudioStorage",
    source=func.BlobSource.EVENT_GRID,
)
async def audio_intake(client: blob.BlobClient) -> None:
    """Check the blob (name, size, first bytes) and submit it; never reads the audio."""
    from shared.app_context import get_context
    from shared.pipeline.intake import handle_audio_blob

    await handle_audio_blob(await get_context(), client.container_name, client.blob_name)
