"""Error reports: ``<path>.error.json`` in the output container, written for people.

Whenever a file cannot be transcribed — rejected at intake, failed inside a job, a job that
failed, got stuck or vanished — a small JSON document lands where its transcript would
have been (written by :func:`shared.pipeline.outputs.report_failure`, the one way a failure
is reported). It says which blob version it is about, what went wrong in the service's own
words where there are any, and what would have been accepted.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from shared.audio_formats import EXTENSIONS

ERROR_SUFFIX = ".error.json"

#: What the intake accepts, quoted in rejections of audio files.
ACCEPTED_AUDIO = (
    "audio files with one of the extensions "
    + ", ".join(sorted(EXTENSIONS))
    + " whose content matches the extension, larger than 0 bytes and at most {limit}"
)

#: What the bulk intake accepts, quoted in rejections of manifests.
ACCEPTED_MANIFEST = (
    'a JSON object with "files" (blob paths in the input container) and/or "prefix", '
    'optional "container", "destinationPrefix", "locale", "diarization", "maxSpeakers" '
    '(2-35), "wordTimestamps", "profanity" (None, Removed, Tags, Masked), "punctuation" '
    '(None, Dictated, Automatic, DictatedAndAutomatic), "channels" ([0], [1] or [0, 1]), '
    '"model" (a model URL), "timeToLiveHours" (6-744) and "languageIdentification" '
    '({"candidateLocales": [...], "mode": "Continuous" | "Single"})'
)

#: What blob metadata may set, quoted in rejections for bad metadata.
ACCEPTED_METADATA = (
    "metadata keys locale (e.g. en-US), diarization (true/false), maxspeakers (2-35), "
    "wordtimestamps (true/false), profanity (None, Removed, Tags, Masked), punctuation "
    "(None, Dictated, Automatic, DictatedAndAutomatic), channels (0, 1 or 0,1), model "
    "(a model URL), timetolivehours (6-744)"
)


class ErrorReport(BaseModel):
    """The content of a ``.error.json``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    #: ``container/path`` of the audio (or manifest) this is about.
    source: str
    #: Its URL, without any SAS.
    source_url: str
    etag: str | None
    status: Literal["Rejected", "Failed"]
    code: str
    message: str
    accepted: str | None = None
    job_id: str | None = None
    manifest: str | None = None
    timestamp: dt.datetime

    def to_json(self) -> str:
        """Indented JSON with camelCase names: the report is read by people."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def report_path(output_base: str) -> str:
    """``<output base>.error.json``."""
    return f"{output_base}{ERROR_SUFFIX}"
