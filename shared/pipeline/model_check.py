"""Models named in job options, looked up once per group per tick before anything is sent.

A batch job naming an unknown model, or one past its transcription deprecation date, fails
only after it has waited its turn at the service. Looking the model up first turns that
into a report at once; within 30 days of the date the files carry a warning instead.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.speech.errors import NotFoundError
from shared.speech.models_client import ModelDeprecationWarning, deprecation_notice

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.speech.models import BaseSpeechModel, CustomSpeechModel

#: ``.../models/base/<id>`` or ``.../models/<id>`` in a model's self URL.
_MODEL_URL = re.compile(r"/models/(?P<base>base/)?(?P<id>[0-9a-fA-F-]{36})(?:[/?]|$)")


@dataclass(frozen=True)
class ModelVerdict:
    """What the files of a group must be told about their model."""

    #: (code, message) when no job may name it.
    problem: tuple[str, str] | None = None
    #: A sentence for the files' history when it stops transcribing soon.
    warning: str | None = None


class ModelCheck:
    """Per-tick cache: each model is fetched once, however many groups name it."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._seen: dict[str, ModelVerdict] = {}

    async def verdict(self, model_url: str | None, *, now: dt.datetime) -> ModelVerdict:
        """Whether jobs may name ``model_url`` (None: the locale's base model, always fine)."""
        if not model_url:
            return ModelVerdict()
        if model_url not in self._seen:
            self._seen[model_url] = await self._look_up(model_url, now)
        return self._seen[model_url]

    async def _look_up(self, model_url: str, now: dt.datetime) -> ModelVerdict:
        match = _MODEL_URL.search(model_url)
        if match is None:
            return ModelVerdict(("InvalidModel", f"{model_url} is not a Speech model URL"))
        models = self._ctx.speech.models
        model: BaseSpeechModel | CustomSpeechModel
        try:
            # The client warns about a retiring model; here that becomes a verdict instead.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ModelDeprecationWarning)
                if match.group("base"):
                    model = await models.get_base_model(match.group("id"))
                else:
                    model = await models.get_custom_model(match.group("id"))
        except NotFoundError:
            return ModelVerdict(
                ("ModelNotFound", f"the model {model_url} does not exist for this resource")
            )
        notice = deprecation_notice(model, now=now)
        when = model.transcription_deprecation
        if notice and when is not None and when.replace(tzinfo=when.tzinfo or dt.UTC) <= now:
            return ModelVerdict(("ModelDeprecated", notice))
        return ModelVerdict(warning=notice)
