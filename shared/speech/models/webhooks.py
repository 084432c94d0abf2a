"""Web hook registrations (``/speechtotext/webhooks``): responses and requests.

A web hook makes the service POST to ``webUrl`` when a registered event happens (for this
app: ``transcriptionCompletion``), so completed jobs need not be polled. The registration's
``properties.secret`` is the HMAC key the service signs each callback with (see
:mod:`shared.speech.webhook_signature`).

The secret is write-only here. Requests hold it as a :class:`~pydantic.SecretStr`, so it
shows as ``'**********'`` in ``repr``, ``str``, ``model_dump`` and validation errors; only
``to_body()``, the JSON sent to the service, carries the real value. Responses never keep
it: Microsoft's own examples echo ``properties.secret`` back, and a lenient response model
would otherwise hold it in ``model_extra`` and print it in every ``repr``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.speech.models._base import RequestModel, ResponseModel
from shared.speech.models.common import CustomProperties, EntityError, HttpUrlStr, Page
from shared.speech.models.enums import OpenEnum, Status


def _id_from_self(self_url: str | None) -> str | None:
    # Same rule as Transcription.id: the last path segment, the query string left out.
    if not self_url:
        return None
    segment = urlsplit(self_url).path.rstrip("/").rpartition("/")[2]
    return segment or None


# ---------------------------------------------------------------------------- responses


class WebHookEvents(ResponseModel):
    """Wire ``WebHookEvents`` as returned: which events the hook is registered for."""

    dataset_creation: bool | None = None
    dataset_processing: bool | None = None
    dataset_completion: bool | None = None
    dataset_deletion: bool | None = None
    model_creation: bool | None = None
    model_processing: bool | None = None
    model_completion: bool | None = None
    model_deletion: bool | None = None
    evaluation_creation: bool | None = None
    evaluation_processing: bool | None = None
    evaluation_completion: bool | None = None
    evaluation_deletion: bool | None = None
    transcription_creation: bool | None = None
    transcription_processing: bool | None = None
    transcription_completion: bool | None = None
    transcription_deletion: bool | None = None
    endpoint_creation: bool | None = None
    endpoint_processing: bool | None = None
    endpoint_completion: bool | None = None
    endpoint_deletion: bool | None = None
    ping: bool | None = None
    challenge: bool | None = None

    @property
    def enabled(self) -> frozenset[str]:
        """Wire names of the events set to true, including ones this client does not know."""
        return frozenset(name for name, value in self.to_dict().items() if value is True)


class WebHookLinks(ResponseModel):
    """Wire ``WebHookLinks``: the URLs of the hook's ``:ping`` and ``:test`` actions."""

    ping: str | None = None
    test: str | None = None


class WebHookProperties(ResponseModel):
    """Wire ``WebHookProperties`` as returned, without ``secret`` (see the module docstring)."""

    error: EntityError | None = None
    #: The API version the hook was created with; it fixes the shape of callback payloads.
    api_version: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_secret(cls, data: Any) -> Any:
        # Kept, it would land in model_extra: printed by repr, written back by to_dict().
        if isinstance(data, dict) and "secret" in data:
            return {key: value for key, value in data.items() if key != "secret"}
        return data


class WebHook(ResponseModel):
    """Wire ``WebHook``: a web hook registration as the service holds it."""

    self_url: str | None = Field(default=None, alias="self")
    display_name: str | None = None
    description: str | None = None
    web_url: str | None = None
    events: WebHookEvents | None = None
    status: OpenEnum[Status] | None = None
    created_date_time: datetime | None = None
    last_action_date_time: datetime | None = None
    links: WebHookLinks | None = None
    properties: WebHookProperties | None = None
    custom_properties: dict[str, str] | None = None

    @property
    def id(self) -> str | None:
        """The web hook id: the last path segment of ``self``, without the query string."""
        return _id_from_self(self.self_url)


class PaginatedWebHooks(Page[WebHook]):
    """Wire ``PaginatedWebHooks``: a page of web hook registrations."""


# ----------------------------------------------------------------------------- requests


class WebHookEventSettings(RequestModel):
    """Wire ``WebHookEvents`` as sent: set to True each event the hook should receive.

    Strict, unlike :class:`WebHookEvents`: a misspelt event name is an error here rather
    than a hook that silently never fires.
    """

    dataset_creation: bool | None = None
    dataset_processing: bool | None = None
    dataset_completion: bool | None = None
    dataset_deletion: bool | None = None
    model_creation: bool | None = None
    model_processing: bool | None = None
    model_completion: bool | None = None
    model_deletion: bool | None = None
    evaluation_creation: bool | None = None
    evaluation_processing: bool | None = None
    evaluation_completion: bool | None = None
    evaluation_deletion: bool | None = None
    transcription_creation: bool | None = None
    transcription_processing: bool | None = None
    transcription_completion: bool | None = None
    transcription_deletion: bool | None = None
    endpoint_creation: bool | None = None
    endpoint_processing: bool | None = None
    endpoint_completion: bool | None = None
    endpoint_deletion: bool | None = None
    ping: bool | None = None
    challenge: bool | None = None


class WebHookRequestProperties(RequestModel):
    """Wire ``WebHookProperties`` / ``WebHookPropertiesUpdate`` as sent: only ``secret``.

    The spec: with a non-empty secret the service signs every callback (header
    ``X-MicrosoftSpeechServices-Signature``); on an update, an empty string removes it.
    """

    secret: SecretStr | None = None

    @field_validator("secret", mode="before")
    @classmethod
    def _keep_secret_exact(cls, value: Any) -> Any:
        # RequestModel strips whitespace from strings, SecretStr included; a stripped secret
        # would make the service sign with a key the receiver does not hold.
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str) and raw != raw.strip():
            raise ValueError("secret must not start or end with whitespace")
        return value


def _body_with_secret(
    body: dict[str, Any], properties: WebHookRequestProperties | None
) -> dict[str, Any]:
    # model_dump writes a SecretStr as "**********"; only the body on the wire gets the value.
    if properties is not None and properties.secret is not None:
        body.setdefault("properties", {})["secret"] = properties.secret.get_secret_value()
    if body.get("properties") == {}:
        # Nothing in it to set: an empty object would only make an empty update look real.
        del body["properties"]
    return body


class WebHookRequest(RequestModel):
    """Wire ``WebHook`` as sent to ``POST /webhooks``: only the properties that are writable."""

    display_name: str = Field(min_length=1)
    web_url: HttpUrlStr
    events: WebHookEventSettings
    description: str | None = None
    custom_properties: CustomProperties | None = None
    properties: WebHookRequestProperties | None = None

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the request, the secret (if any) in clear."""
        return _body_with_secret(super().to_body(), self.properties)


class WebHookUpdate(RequestModel):
    """Wire ``WebHookUpdate``: the body of a web hook PATCH; unset fields stay unchanged.

    Changing ``web_url`` pauses the hook until the new URL answers the service's challenge.
    """

    # The spec sets no minLength here, but a web hook's displayName has minLength 1, so an
    # update cannot validly blank it.
    display_name: str | None = Field(default=None, min_length=1)
    description: str | None = None
    web_url: HttpUrlStr | None = None
    events: WebHookEventSettings | None = None
    custom_properties: CustomProperties | None = None
    properties: WebHookRequestProperties | None = None

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the request, the secret (if any) in clear."""
        return _body_with_secret(super().to_body(), self.properties)
