"""What each function parameter receives, decided once from its binding and annotation.

The Python worker picks a converter per parameter from the binding type and the
annotation; this module makes the same choice up front, so a function whose parameters
the local host cannot fill is skipped at start-up with the reason, never half-invoked.

SDK types (``azurefunctions.extensions.bindings.blob.BlobClient`` and friends) are
recognised through the extension's own registry, exactly as the worker does, and later
built by the extension's converter: the function gets what it would get in Azure (for
``BlobClient`` an ``azure.storage.blob.BlobClient``, see ``BlobClient.get_sdk_type``).
"""

from __future__ import annotations

import enum
import importlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from starlette.requests import Request as StarletteRequest


class ParamKind(enum.Enum):
    """How a parameter is filled."""

    #: FastAPI / Starlette ``Request``: the body is streamed, never read ahead (HTTP streams).
    HTTP_STREAM = "http-stream"
    #: ``func.HttpRequest``: the body is read whole first, as the classic worker does.
    HTTP_CLASSIC = "http"
    TIMER = "timer"
    #: An SDK type from a binding extension (``BlobClient``, ``ContainerClient``,
    #: ``StorageStreamDownloader``), built by the extension's converter.
    BLOB_SDK = "blob-sdk"
    #: ``func.InputStream``: like the worker, the whole blob is read before the call.
    INPUT_STREAM = "input-stream"
    BYTES = "bytes"
    STR = "str"
    #: ``func.Out[str]`` / ``func.Out[bytes]`` for a blob output binding.
    BLOB_OUT = "blob-out"
    #: ``func.Context``.
    CONTEXT = "context"


class UnsupportedBinding(ValueError):
    """The local host cannot fill this parameter; the message says which and why."""


@dataclass(frozen=True)
class Param:
    """One parameter of a user function and where its value comes from."""

    name: str
    kind: ParamKind
    #: The resolved annotation (``None`` when the parameter has none).
    annotation: Any
    #: The binding (``function.json`` shape, ``%SETTING%`` resolved); empty for the context.
    binding: Mapping[str, Any] = field(default_factory=dict)


def strip_optional(annotation: Any) -> Any:
    """``X`` for ``X | None`` / ``Optional[X]``; anything else unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_subclass(annotation: Any, base: type) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, base)


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type):
        return f"{annotation.__module__}.{annotation.__qualname__}"
    return repr(annotation)


def sdk_converter(binding_type: str, annotation: Any) -> Any | None:
    """The extension converter building ``annotation`` for ``binding_type``, for an SDK type.

    None for ordinary annotations. Raises :class:`UnsupportedBinding` for an SDK type no
    imported extension converts for this binding.
    """
    try:
        base = importlib.import_module("azurefunctions.extensions.base")
    except ImportError:  # no binding extension installed: nothing can be an SDK type
        return None
    registry = base.get_binding_registry()
    if not registry.check_supported_type(annotation):
        return None
    converter = registry.get(binding_type)
    if converter is None or not converter.check_input_type_annotation(annotation):
        raise UnsupportedBinding(
            f"no binding extension converts {_describe(annotation)} for a {binding_type} binding"
        )
    return converter


def http_kind(annotation: Any) -> ParamKind:
    """The kind of an HTTP trigger parameter."""
    annotation = strip_optional(annotation)
    if annotation is None or _is_subclass(annotation, func.HttpRequest):
        return ParamKind.HTTP_CLASSIC
    if _is_subclass(annotation, StarletteRequest):
        return ParamKind.HTTP_STREAM
    raise UnsupportedBinding(
        f"an HTTP trigger takes func.HttpRequest or the FastAPI Request of "
        f"azurefunctions.extensions.http.fastapi, not {_describe(annotation)}"
    )


def timer_kind(annotation: Any) -> ParamKind:
    """The kind of a timer trigger parameter."""
    annotation = strip_optional(annotation)
    if annotation is None or _is_subclass(annotation, func.TimerRequest):
        return ParamKind.TIMER
    raise UnsupportedBinding(
        f"a timer trigger takes func.TimerRequest, not {_describe(annotation)}"
    )


def blob_kind(binding_type: str, annotation: Any) -> ParamKind:
    """The kind of a blob trigger or blob input parameter."""
    annotation = strip_optional(annotation)
    if sdk_converter(binding_type, annotation) is not None:
        return ParamKind.BLOB_SDK
    if annotation is None or _is_subclass(annotation, func.InputStream):
        return ParamKind.INPUT_STREAM
    if annotation is bytes:
        return ParamKind.BYTES
    if annotation is str:
        return ParamKind.STR
    raise UnsupportedBinding(
        f"a {binding_type} binding takes BlobClient, ContainerClient, StorageStreamDownloader "
        f"(azurefunctions.extensions.bindings.blob), func.InputStream, bytes or str, "
        f"not {_describe(annotation)}"
    )


def check_blob_output(annotation: Any) -> None:
    """Accept ``func.Out[str]`` / ``func.Out[bytes]`` (a blob output); raise for anything else."""
    if typing.get_origin(annotation) is func.Out:
        (inner,) = typing.get_args(annotation)
        if strip_optional(inner) in (str, bytes):
            return
    raise UnsupportedBinding(
        f"a blob output takes func.Out[str] or func.Out[bytes], not {_describe(annotation)}"
    )


def is_context(name: str, annotation: Any) -> bool:
    """True for the invocation context: annotated ``func.Context``, or a bare ``context``."""
    if annotation is None:
        return name == "context"
    return _is_subclass(strip_optional(annotation), func.Context)
