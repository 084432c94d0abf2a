"""Base classes for the wire models.

Two kinds, on purpose:

* :class:`ResponseModel` is lenient. The service adds fields over time and several of
  Microsoft's own examples still carry v3 names (``timeToLive``, ``diarizationEnabled``,
  ``duration``). Every field is optional, unknown fields are kept in ``model_extra`` and
  written back by :meth:`ResponseModel.to_dict`, so nothing a response carried is lost.
* :class:`RequestModel` is strict. Unknown fields are an error and every documented
  constraint is checked before a request leaves the process. pydantic's
  ``ValidationError`` is a ``ValueError`` and its message names the field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr
from pydantic.alias_generators import to_camel


class ResponseModel(BaseModel):
    """A model parsed from a service response: lenient, lossless."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        alias_generator=to_camel,
        serialize_by_alias=True,
    )

    # The service's Retry-After on a GET of a running job: when to look again, at least.
    _retry_after: float | None = PrivateAttr(default=None)

    @property
    def retry_after(self) -> float | None:
        """Seconds the service asked callers to wait before polling again, if it said."""
        return self._retry_after

    def to_dict(self) -> dict[str, Any]:
        """The JSON object this model was parsed from: the fields it had, extras included."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class RequestModel(BaseModel):
    """A model the client sends: strict, validated before any I/O."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        serialize_by_alias=True,
        validate_assignment=True,
        str_strip_whitespace=True,
        # A rejected content URL must not put its SAS signature into the error text.
        hide_input_in_errors=True,
    )

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the request: wire names, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
