"""Speech models: the base models a locale offers and the resource's custom models."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from shared.redact import get_logger
from shared.speech._client import (
    AsyncPager,
    BaseSpeechClient,
    and_filters,
    check_id,
    check_paging,
    odata_quote,
)
from shared.speech.models import (
    BaseSpeechModel,
    CustomSpeechModel,
    Page,
    PaginatedBaseSpeechModels,
    PaginatedCustomSpeechModels,
)
from shared.speech.pipeline import TimeoutArg
from shared.speech.retry import RetryPolicy

_log = get_logger("shared.speech.models")

M = TypeVar("M", BaseSpeechModel, CustomSpeechModel)

#: How far ahead a coming deprecation is worth a warning.
DEPRECATION_WARNING_WINDOW = timedelta(days=30)


class ModelDeprecationWarning(UserWarning):
    """A chosen model stops transcribing soon, or already has."""


def deprecation_notice(
    model: BaseSpeechModel | CustomSpeechModel, *, now: datetime | None = None
) -> str | None:
    """A sentence about the model's transcription deprecation, or None if it is not near."""
    when = model.transcription_deprecation
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    name = model.display_name or model.self_url or "model"
    if when <= now:
        return f"{name} can no longer be used for transcription since {when:%Y-%m-%d}"
    if when - now <= DEPRECATION_WARNING_WINDOW:
        return f"{name} stops transcribing on {when:%Y-%m-%d} ({(when - now).days} days left)"
    return None


def _warn_if_deprecated(model: BaseSpeechModel | CustomSpeechModel) -> None:
    notice = deprecation_notice(model)
    if notice:
        _log.warning("%s", notice)
        warnings.warn(notice, ModelDeprecationWarning, stacklevel=3)


class ModelsClient(BaseSpeechClient):
    """The ``/speechtotext/models`` surface: look models up before naming one in a job."""

    async def _get(self, path: str, timeout: TimeoutArg, retry: RetryPolicy | None) -> Any:
        return (await self._send("GET", path, timeout=timeout, retry=retry)).json()

    async def get_base_model(
        self, model_id: str, *, timeout: TimeoutArg = None, retry: RetryPolicy | None = None
    ) -> BaseSpeechModel:
        """A base model; warns (:class:`ModelDeprecationWarning`) when it retires soon."""
        mid = check_id(model_id, what="model_id")
        model = BaseSpeechModel.model_validate(
            await self._get(f"/models/base/{mid}", timeout, retry)
        )
        _warn_if_deprecated(model)
        return model

    async def get_custom_model(
        self, model_id: str, *, timeout: TimeoutArg = None, retry: RetryPolicy | None = None
    ) -> CustomSpeechModel:
        """A custom model of this resource; warns when it retires soon."""
        mid = check_id(model_id, what="model_id")
        model = CustomSpeechModel.model_validate(await self._get(f"/models/{mid}", timeout, retry))
        _warn_if_deprecated(model)
        return model

    def _list(
        self,
        path: str,
        page_model: type[Page[M]],
        locale: str | None,
        filter: str | None,
        top: int | None,
        skip: int | None,
        timeout: TimeoutArg,
        retry: RetryPolicy | None,
    ) -> AsyncPager[M]:
        check_paging(top, skip)
        locale_clause = f"locale eq {odata_quote(locale)}" if locale else None
        params = self._params(filter=and_filters(filter, locale_clause), top=top, skip=skip)
        return self._paged(path, params, page_model, timeout=timeout, retry=retry)

    def list_base_models(
        self,
        *,
        locale: str | None = None,
        filter: str | None = None,
        top: int | None = None,
        skip: int | None = None,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncPager[BaseSpeechModel]:
        """Base models, optionally only those of ``locale`` (e.g. ``en-US``)."""
        return self._list(
            "/models/base", PaginatedBaseSpeechModels, locale, filter, top, skip, timeout, retry
        )

    def list_custom_models(
        self,
        *,
        locale: str | None = None,
        filter: str | None = None,
        top: int | None = None,
        skip: int | None = None,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncPager[CustomSpeechModel]:
        """This resource's custom models, optionally only those of ``locale``."""
        return self._list(
            "/models", PaginatedCustomSpeechModels, locale, filter, top, skip, timeout, retry
        )
