"""Storage helpers on Azurite: ranged peeks, SAS of both kinds, outputs with content types."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.core.exceptions import ResourceModifiedError

from local.stack import StackInfo
from shared.audio_formats import SNIFF_BYTES
from tests.pipeline.conftest import FIXTURES, Pipeline


async def test_the_peek_reads_only_the_first_bytes_of_that_version(pipeline: Pipeline) -> None:
    name = await pipeline.upload_fixture("sentence-01.wav")
    blob = await pipeline.ctx.storage.get_properties(pipeline.settings.input_container, name)
    assert blob is not None

    head = await pipeline.ctx.storage.read_head(blob)

    assert head == (FIXTURES / "sentence-01.wav").read_bytes()[:SNIFF_BYTES]
    await pipeline.upload_fixture("sentence-02.wav", name)  # overwritten meanwhile
    with pytest.raises(ResourceModifiedError):
        await pipeline.ctx.storage.read_head(blob)


async def test_user_delegation_sas_reads_only_and_its_key_is_reused(
    pipeline: Pipeline, stack: StackInfo
) -> None:
    storage = pipeline.ctx.storage
    name = await pipeline.upload_fixture("sentence-01.wav", "sas/a b.wav")
    requests: list[Any] = []
    original = storage.service.get_user_delegation_key

    def counting(*args: Any, **kwargs: Any) -> Any:
        requests.append(args)
        return original(*args, **kwargs)

    storage.service.get_user_delegation_key = counting  # type: ignore[method-assign]

    urls = await asyncio.gather(
        *(storage.sas_url(pipeline.settings.input_container, name) for _ in range(5))
    )

    assert len(requests) == 1, "one delegation key serves every SAS"
    query = parse_qs(urlsplit(urls[0]).query)
    assert query["sp"] == ["r"]
    assert "skoid" in query, "a user-delegation SAS"
    assert query["spr"] == ["https"]
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=stack.ca_bundle)) as http:
        read = await http.get(urls[0])
        write = await http.put(urls[0], content=b"x", headers={"x-ms-blob-type": "BlockBlob"})
    assert read.status_code == 200
    assert read.content == (FIXTURES / "sentence-01.wav").read_bytes()
    assert write.status_code == 403


async def test_a_development_connection_string_signs_with_the_account_key(
    make_pipeline: Callable[..., Awaitable[Pipeline]], stack: StackInfo
) -> None:
    pipeline = await make_pipeline(
        AudioStorage=stack.env["LOCAL_STORAGE_CONNECTION_STRING"],
        AudioStorage__blobServiceUri=None,
        AudioStorage__tableServiceUri=None,
    )
    assert not pipeline.settings.uses_identity
    name = await pipeline.upload_fixture("sentence-02.wav")

    url = await pipeline.ctx.storage.sas_url(pipeline.settings.input_container, name)

    query = parse_qs(urlsplit(url).query)
    assert "skoid" not in query
    assert query["sp"] == ["r"]
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=stack.ca_bundle)) as http:
        assert (await http.get(url)).status_code == 200


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("x/a.wav.json", "application/json"),
        ("x/a.wav.txt", "text/plain; charset=utf-8"),
        ("x/a.wav.srt", "application/x-subrip"),
        ("x/a.wav.vtt", "text/vtt"),
    ],
)
async def test_outputs_carry_content_type_and_cache_control(
    pipeline: Pipeline, name: str, content_type: str
) -> None:
    url = await pipeline.ctx.storage.write_output(name, "hello ✓")
    await pipeline.ctx.storage.write_output(name, "hello again ✓")  # overwrite is fine

    client = pipeline.ctx.blob_service.get_blob_client(pipeline.settings.output_container, name)
    props = await asyncio.to_thread(client.get_blob_properties)
    assert props.content_settings.content_type == content_type
    assert props.content_settings.cache_control == "no-cache"
    assert await pipeline.output(name) == "hello again ✓".encode()
    assert "?" not in url
