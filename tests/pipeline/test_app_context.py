"""The per-process context: built once, TLS from REQUESTS_CA_BUNDLE, broken identity fails fast."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient

from local.stack import StackInfo
from shared import app_context
from shared.app_context import build_context, close_context, get_context, storage_retry_policy
from tests.pipeline.conftest import speech_settings, stack_settings


async def test_concurrent_first_calls_build_one_context(
    stack: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = f"ledger{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("AudioStorage__blobServiceUri", stack.blob_endpoint)
    monkeypatch.setenv("AudioStorage__tableServiceUri", stack.table_endpoint)
    monkeypatch.setenv("LEDGER_TABLE", table)
    monkeypatch.setenv("SPEECH_ENDPOINT", stack.speech_url)
    monkeypatch.setenv("SPEECH_RESOURCE_ID", stack.resource_id)
    builds: list[str] = []
    original = app_context.build_context

    def counting(*args: object, **kwargs: object) -> app_context.AppContext:
        builds.append("build")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app_context, "build_context", counting)
    try:
        contexts = await asyncio.gather(*(get_context() for _ in range(20)))
        assert len({id(c) for c in contexts}) == 1
        assert builds == ["build"]
        ctx = contexts[0]
        assert ctx.settings.ledger_table == table
        assert ctx.credential is not None, "keyless: one Entra credential"
        assert await get_context() is ctx
        await asyncio.to_thread(ctx.table_service.delete_table, table)
    finally:
        await close_context()
    assert app_context._context is None


async def test_tls_to_azurite_is_trusted_through_requests_ca_bundle(
    stack: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The app passes no connection_verify: azure-core's requests transport reads
    # REQUESTS_CA_BUNDLE itself. Without it, Azurite's certificate is not trusted.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    settings = stack_settings(stack, storage_retry_total=0)
    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        await asyncio.to_thread(build_context, settings, speech_settings=speech_settings(stack))


async def test_a_broken_identity_fails_in_seconds(
    stack: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token")
    settings = stack_settings(stack)
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    service = BlobServiceClient(
        stack.blob_endpoint, credential=credential, retry_policy=storage_retry_policy(settings)
    )
    started = time.monotonic()
    with pytest.raises(ClientAuthenticationError):
        await asyncio.to_thread(service.get_blob_client("any", "blob.wav").get_blob_properties)
    elapsed = time.monotonic() - started
    service.close()
    # The SDK's default policy retries the failed token fetch for ~100 s.
    assert elapsed < 15, f"took {elapsed:.1f} s"
