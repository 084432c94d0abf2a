"""Discovery: what runs, what is skipped and why, how each parameter is filled."""

from __future__ import annotations

from pathlib import Path

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blobext
import pytest
from azure.storage.blob import BlobClient
from azurefunctions.extensions.http.fastapi import Request

from local.host.app import AppLoadError, HttpConfig, discover, load_app
from local.host.bindings import ParamKind

ENV = {"CONTAINER": "audio-input"}


def _app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="recognize", methods=["POST"])
    async def recognize(req: Request) -> None: ...

    @app.route(route="legacy")
    def legacy(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return func.HttpResponse()

    @app.blob_trigger(arg_name="blob", path="%CONTAINER%/{name}", connection="AudioStorage")
    def intake(blob: blobext.BlobClient) -> None: ...

    @app.blob_trigger(arg_name="blob", path="%CONTAINER%/{name}", connection="AudioStorage")
    def raw_sdk_type(blob: BlobClient) -> None: ...

    @app.timer_trigger(schedule="0 */5 * * *", arg_name="timer")
    def five_fields(timer: func.TimerRequest) -> None: ...

    @app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")
    def extra_param(timer: func.TimerRequest, unbound: str) -> None: ...

    @app.queue_trigger(arg_name="msg", queue_name="q", connection="AudioStorage")
    def on_queue(msg: func.QueueMessage) -> None: ...

    @app.route(route="out")
    @app.queue_output(arg_name="msg", queue_name="q", connection="AudioStorage")
    def with_queue_output(req: Request, msg: func.Out[str]) -> None: ...

    return app


def test_supported_functions_run_and_the_rest_say_why() -> None:
    found = discover(_app(), ENV)
    run = {spec.name: spec for spec in found.functions}
    assert set(run) == {"recognize", "legacy", "intake"}
    assert run["recognize"].is_async
    assert run["recognize"].trigger_param.kind is ParamKind.HTTP_STREAM
    config = run["recognize"].config
    assert isinstance(config, HttpConfig)
    assert config.methods == frozenset({"POST"})
    assert config.auth_level == "function"
    assert not run["legacy"].is_async
    assert [p.kind for p in run["legacy"].params] == [ParamKind.HTTP_CLASSIC, ParamKind.CONTEXT]
    assert run["intake"].trigger_param.kind is ParamKind.BLOB_SDK

    reasons = {s.name: s.reason for s in found.skipped}
    assert "BlobClient" in reasons["raw_sdk_type"]  # the SDK class itself is no binding type
    assert "6 fields" in reasons["five_fields"]
    assert "'unbound' has no binding" in reasons["extra_param"]
    assert reasons["on_queue"] == "queueTrigger triggers are not supported by the local host"
    assert "queue (out) bindings are not supported" in reasons["with_queue_output"]


def test_a_missing_setting_skips_only_its_function() -> None:
    found = discover(_app(), {})
    reasons = {s.name: s.reason for s in found.skipped}
    assert "set CONTAINER" in reasons["intake"]
    assert "recognize" in {spec.name for spec in found.functions}


def test_load_app_names_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "not_an_app.py").write_text("app = 42\n")
    with pytest.raises(AppLoadError, match="no FunctionApp named 'app'"):
        load_app("not_an_app:app", tmp_path)
    with pytest.raises(AppLoadError, match="module:attribute"):
        load_app(":app", tmp_path)
    with pytest.raises(ModuleNotFoundError):
        load_app("no_such_module_anywhere:app", tmp_path)
