"""Put test audio into the offline stack's Azurite, signed the way the app signs it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping

from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

from local.stack import StackInfo


def upload_with_user_delegation_sas(
    info: StackInfo, files: Mapping[str, bytes], *, prefix: str = "test"
) -> dict[str, str]:
    """Upload ``files`` to a new container; a read-only user-delegation SAS URL for each.

    The delegation key comes through the local managed identity with
    ``DefaultAzureCredential``, exactly as the app gets it in Azure.
    """
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    service = BlobServiceClient(
        info.blob_endpoint, credential=credential, connection_verify=info.ca_bundle
    )
    with service:
        container = service.create_container(f"{prefix}-{uuid.uuid4().hex[:10]}")
        now = dt.datetime.now(dt.UTC)
        expiry = now + dt.timedelta(hours=2)
        key = service.get_user_delegation_key(now - dt.timedelta(minutes=5), expiry)
        urls = {}
        for name, data in files.items():
            container.upload_blob(name, data)
            sas = generate_blob_sas(
                account_name=info.env["LOCAL_STORAGE_ACCOUNT"],
                container_name=container.container_name,
                blob_name=name,
                user_delegation_key=key,
                permission=BlobSasPermissions(read=True),
                expiry=expiry,
            )
            urls[name] = f"{container.url}/{name}?{sas}"
        return urls
