"""Azurite over HTTPS with managed-identity tokens: the keyless production path, offline."""

from __future__ import annotations

import datetime as dt
import ssl
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

from local.stack import StackInfo

STORAGE_SCOPE = "https://storage.azure.com/.default"
# Table and queue have no client library in this repo's pins: plain REST, as documented.
REST_VERSION = "2021-12-02"


def trust(info: StackInfo) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=info.ca_bundle)


def blob_service(info: StackInfo, **kwargs: Any) -> BlobServiceClient:
    return BlobServiceClient(
        info.blob_endpoint,
        credential=info.credential(),
        connection_verify=info.ca_bundle,
        **kwargs,
    )


def bearer(info: StackInfo, scope: str = STORAGE_SCOPE) -> dict[str, str]:
    token = info.credential().get_token(scope).token
    return {"Authorization": f"Bearer {token}", "x-ms-version": REST_VERSION}


def test_user_delegation_sas_from_a_managed_identity_token(
    local_stack_no_emulator: StackInfo,
) -> None:
    info = local_stack_no_emulator
    service = blob_service(info)
    container = service.create_container(f"audio-{uuid.uuid4().hex[:12]}")
    data = b"RIFF....WAVEfmt not really audio"
    container.upload_blob("meeting.wav", data)

    now = dt.datetime.now(dt.UTC)
    key = service.get_user_delegation_key(
        now - dt.timedelta(minutes=1), now + dt.timedelta(hours=1)
    )
    assert key.signed_oid == info.env["LOCAL_IDENTITY_OBJECT_ID"]
    assert key.signed_tid == info.env["LOCAL_TENANT_ID"]
    sas = generate_blob_sas(
        account_name="devstoreaccount1",
        container_name=container.container_name,
        blob_name="meeting.wav",
        user_delegation_key=key,
        permission=BlobSasPermissions(read=True),
        expiry=now + dt.timedelta(minutes=30),
    )
    url = f"{container.url}/meeting.wav"

    with httpx.Client(verify=trust(info)) as http:
        fetched = http.get(f"{url}?{sas}")
        assert fetched.status_code == 200
        assert fetched.content == data

        query = dict(parse_qsl(sas))
        query["sig"] = ("A" if query["sig"][0] != "A" else "B") + query["sig"][1:]
        assert http.get(f"{url}?{urlencode(query)}").status_code == 403

        query = dict(parse_qsl(sas))
        query["se"] = (now + dt.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert http.get(f"{url}?{urlencode(query)}").status_code == 403

        written = http.put(f"{url}?{sas}", content=b"x", headers={"x-ms-blob-type": "BlockBlob"})
        assert written.status_code == 403

        anonymous = http.get(url)
        assert anonymous.status_code in (403, 404)
        assert data not in anonymous.content


def test_a_token_for_another_audience_is_refused(local_stack_no_emulator: StackInfo) -> None:
    info = local_stack_no_emulator
    headers = bearer(info, "https://cognitiveservices.azure.com/.default")
    response = httpx.get(f"{info.blob_endpoint}?comp=list", headers=headers, verify=trust(info))
    assert response.status_code == 403
    assert "audience" in response.text


def test_blob_client_surfaces_a_refused_credential(
    local_stack_no_emulator: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    # The storage retry policy sits before the credential policy and retries any
    # AzureError, token failures included: with its defaults this raises only after
    # about 85 s of backoff. Production code should know; the test need not wait.
    with pytest.raises(ClientAuthenticationError):
        blob_service(local_stack_no_emulator, retry_total=0).get_service_properties()


def test_table_endpoint_accepts_bearer_tokens_over_https(
    local_stack_no_emulator: StackInfo,
) -> None:
    info = local_stack_no_emulator
    name = f"ledger{uuid.uuid4().hex[:12]}"
    headers = {**bearer(info), "Accept": "application/json;odata=nometadata"}
    with httpx.Client(verify=trust(info)) as http:
        created = http.post(
            f"{info.table_endpoint}/Tables",
            json={"TableName": name},
            headers={**headers, "Prefer": "return-no-content"},
        )
        assert created.status_code == 204
        listed = http.get(f"{info.table_endpoint}/Tables", headers=headers)
        assert listed.status_code == 200
        assert {"TableName": name} in listed.json()["value"]
        assert http.get(f"{info.table_endpoint}/Tables").status_code == 403


def test_queue_endpoint_accepts_bearer_tokens_over_https(
    local_stack_no_emulator: StackInfo,
) -> None:
    info = local_stack_no_emulator
    name = f"jobs-{uuid.uuid4().hex[:12]}"
    headers = bearer(info)
    with httpx.Client(verify=trust(info)) as http:
        assert http.put(f"{info.queue_endpoint}/{name}", headers=headers).status_code == 201
        message = "<QueueMessage><MessageText>aGVsbG8=</MessageText></QueueMessage>"
        sent = http.post(f"{info.queue_endpoint}/{name}/messages", content=message, headers=headers)
        assert sent.status_code == 201
        peeked = http.get(
            f"{info.queue_endpoint}/{name}/messages", params={"peekonly": "true"}, headers=headers
        )
        assert peeked.status_code == 200
        assert "aGVsbG8=" in peeked.text
        assert http.put(f"{info.queue_endpoint}/{name}x").status_code == 403


def test_plain_http_is_not_served(local_stack_no_emulator: StackInfo) -> None:
    url = local_stack_no_emulator.blob_endpoint.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}?comp=list").raise_for_status()
