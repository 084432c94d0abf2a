"""Check HTTP requests and responses against Microsoft's Azure Speech-to-Text Swagger 2.0 spec.

The specs under ``tests/data/speech-spec/<api-version>/speechtotext.json`` are the contract.
:class:`SpeechSpec` routes a request to its Swagger operation and reports every way the
request breaks the contract: unknown path or method, undeclared or malformed query
parameters, wrong ``api-version``, missing or doubled auth, a body that does not match its
schema. Request bodies are checked strictly (Swagger objects do not say
``additionalProperties: false``, so a misspelt or outdated field name would otherwise pass);
response bodies are lenient unless ``strict=True``, because the service may add fields.

Every check collects all problems first and then raises one :class:`SpecViolation` whose
message has one problem per line, each prefixed with the operationId when it is known.
"""

from __future__ import annotations

import email.parser
import email.policy
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

# jsonschema ships no type information and the repo does not carry types-jsonschema.
from jsonschema import Draft4Validator, Draft7Validator, FormatChecker  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

SPEC_DIR = Path(__file__).resolve().parent.parent / "data" / "speech-spec"
API_VERSIONS = ("2024-11-15", "2025-10-15")

# The service accepts a Microsoft Entra token instead of the key the spec's security names.
_BEARER_HEADER = "authorization"
_HOST_SUFFIX = "/speechtotext"
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
_INTEGER = re.compile(r"[+-]?\d+")
_PARAM = re.compile(r"\{[^{}]+\}")
_PARAM_SPLIT = re.compile(r"(\{[^{}]+\})")
# formData string parameters carry JSON documents; the spec names their type only in prose.
_SERIALIZED_TYPE = re.compile(r"JSON-serialized object of type `(\w+)`")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


class SpecViolation(AssertionError):
    """A request or response breaks the contract; the message lists each problem on its own line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Parameter:
    """One operation parameter, with path-level and ``#/parameters`` references resolved."""

    name: str
    location: str  # "path" | "query" | "header" | "body" | "formData"
    required: bool
    definition: Mapping[str, Any] = field(compare=False, repr=False)

    @property
    def schema(self) -> Mapping[str, Any]:
        """The JSON schema of the value: ``schema`` for a body, the parameter itself otherwise."""
        if self.location == "body":
            body_schema: Mapping[str, Any] = self.definition["schema"]
            return body_schema
        return self.definition


@dataclass(frozen=True)
class Operation:
    """One Swagger operation: a method on a path template, with what it accepts and returns."""

    operation_id: str
    method: str  # upper case, e.g. "POST"
    path_template: str  # relative to {endpoint}/speechtotext, e.g. "/models/{id}:copy"
    parameters: tuple[Parameter, ...]
    consumes: tuple[str, ...]
    responses: Mapping[str, Mapping[str, Any]] = field(compare=False, repr=False)
    examples: tuple[str, ...] = ()  # file names of the x-ms-examples, e.g. "get_model.json"

    def parameters_in(self, location: str) -> dict[str, Parameter]:
        """The parameters at ``location`` ("path", "query", "body", "formData"), by name."""
        return {p.name: p for p in self.parameters if p.location == location}


@dataclass(frozen=True)
class _Route:
    template: str
    pattern: re.Pattern[str]
    # One flag per segment, True where the segment holds a template parameter. Comparing
    # these tuples ranks "/models/base/{id}" above "/models/{id}/files", as routers do.
    rank: tuple[bool, ...]


class SpeechSpec:
    """One version of the Speech-to-Text contract; get instances with :meth:`load`."""

    def __init__(self, api_version: str, document: Mapping[str, Any]) -> None:
        """Index ``document``, a parsed Swagger 2.0 spec for ``api_version``."""
        declared = document["info"]["version"]
        if declared != api_version:
            raise ValueError(f"spec declares version {declared!r}, expected {api_version!r}")
        self.api_version = api_version
        self.document = document
        self.definitions: Mapping[str, Any] = document["definitions"]
        host = document["x-ms-parameterized-host"]["hostTemplate"]
        if host != "{endpoint}" + _HOST_SUFFIX:
            raise ValueError(f"unexpected host template {host!r}")
        self._auth_headers = tuple(
            scheme["name"].lower()
            for scheme in document["securityDefinitions"].values()
            if scheme["type"] == "apiKey" and scheme["in"] == "header"
        )
        self._operations: dict[str, Operation] = {}
        self._by_route: dict[str, dict[str, Operation]] = {}
        self._routes: list[_Route] = []
        for template, item in document["paths"].items():
            shared = [self._parameter(p) for p in item.get("parameters", [])]
            methods: dict[str, Operation] = {}
            for method in _METHODS:
                if method in item:
                    op = self._operation(template, method, item[method], shared)
                    methods[op.method] = op
                    self._operations[op.operation_id] = op
            self._by_route[template] = methods
            self._routes.append(_compile_route(template))

    @classmethod
    def load(cls, api_version: str) -> SpeechSpec:
        """The spec for ``api_version`` ("2024-11-15" or "2025-10-15"), read once and cached."""
        return _load(api_version)

    def operations(self) -> list[Operation]:
        """Every operation in the spec, in document order."""
        return list(self._operations.values())

    def operation(self, operation_id: str) -> Operation:
        """The operation with this operationId; KeyError if the spec has none."""
        try:
            return self._operations[operation_id]
        except KeyError:
            raise KeyError(f"{operation_id!r} is not an operation of {self.api_version}") from None

    def match(self, method: str, url: str, base_url: str) -> tuple[Operation, dict[str, str]]:
        """Route ``method url`` to its operation and return it with the decoded path parameters.

        ``base_url`` is the ``{endpoint}`` of the spec's host template, so the URL must start
        with ``base_url + "/speechtotext"``. A concrete segment wins over a template parameter
        (``/models/base`` is not ``/models/{id}``); any remaining tie is a violation.
        """
        prefix = base_url.rstrip("/") + _HOST_SUFFIX
        target = url.partition("#")[0].partition("?")[0]
        if not target.startswith(prefix):
            raise SpecViolation([f"URL {url!r} does not start with {prefix!r}"])
        rest = target[len(prefix) :]
        candidates = [r for r in self._routes if r.pattern.fullmatch(rest)]
        if not candidates:
            raise SpecViolation([f"path {rest!r} matches no path template of {self.api_version}"])
        best = min(r.rank for r in candidates)
        winners = [r for r in candidates if r.rank == best]
        if len(winners) > 1:
            names = ", ".join(r.template for r in winners)
            raise SpecViolation([f"path {rest!r} matches several path templates: {names}"])
        route = winners[0]
        methods = self._by_route[route.template]
        op = methods.get(method.upper())
        if op is None:
            allowed = ", ".join(methods)
            problem = f"method {method.upper()} is not defined for {route.template}"
            raise SpecViolation([f"{problem} (allowed: {allowed})"])
        found = route.pattern.fullmatch(rest)
        assert found is not None  # the route was chosen because it matched
        return op, {name: unquote(value) for name, value in found.groupdict().items()}

    def validate_request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        base_url: str,
    ) -> Operation:
        """Check a whole request; return its operation or raise :class:`SpecViolation`."""
        lowered = {name.lower(): value for name, value in headers.items()}
        auth = self._auth_problems(lowered)
        try:
            op, path_params = self.match(method, url, base_url)
        except SpecViolation as routing:
            raise SpecViolation([*routing.problems, *auth]) from None
        problems = [
            *auth,
            *self._path_problems(op, path_params),
            *self._query_problems(op, urlsplit(url).query),
            *self._body_problems(op, lowered.get("content-type"), body),
        ]
        if problems:
            raise SpecViolation([f"{op.operation_id}: {p}" for p in problems])
        return op

    def validate_response(
        self,
        operation_id: str,
        status: int,
        body: Any,
        headers: Mapping[str, str] | None = None,
        *,
        strict: bool = False,
    ) -> None:
        """Check a response of ``operation_id``; raise :class:`SpecViolation` on any problem.

        ``body`` is the parsed JSON value, or the raw JSON text as ``bytes``/``str``; ``None``
        or empty means no body. Lenient by default: properties the schema does not declare are
        allowed, as Swagger allows them. ``strict=True`` also rejects undeclared properties,
        a body where the spec declares none, and, when ``headers`` is given, missing or
        malformed declared response headers.
        """
        op = self.operation(operation_id)
        problems = self._response_problems(op, status, body, headers, strict=strict)
        if problems:
            raise SpecViolation([f"{op.operation_id}: {p}" for p in problems])

    # -- spec indexing -----------------------------------------------------------------

    def _parameter(self, raw: Mapping[str, Any]) -> Parameter:
        resolved = self._resolve(raw)
        return Parameter(
            name=resolved["name"],
            location=resolved["in"],
            required=bool(resolved.get("required", False)),
            definition=resolved,
        )

    def _operation(
        self,
        template: str,
        method: str,
        raw: Mapping[str, Any],
        shared: list[Parameter],
    ) -> Operation:
        own = [self._parameter(p) for p in raw.get("parameters", [])]
        # Operation-level parameters override path-level ones with the same name and location.
        overridden = {(p.name, p.location) for p in own}
        parameters = [p for p in shared if (p.name, p.location) not in overridden] + own
        examples = tuple(Path(ref["$ref"]).name for ref in raw.get("x-ms-examples", {}).values())
        return Operation(
            operation_id=raw["operationId"],
            method=method.upper(),
            path_template=template,
            parameters=tuple(parameters),
            consumes=tuple(raw.get("consumes", self.document.get("consumes", ()))),
            responses=raw["responses"],
            examples=examples,
        )

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """Follow local ``$ref`` chains ("#/definitions/X", "#/parameters/X") to the target."""
        return self._resolve_named(schema)[1]

    def _resolve_named(self, schema: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
        """Like :meth:`_resolve`, also naming the target (its definition name) for messages."""
        name = "an inline schema"
        while "$ref" in schema:
            name = schema["$ref"].rpartition("/")[2]
            schema = self._pointer(schema["$ref"])
        return name, schema

    def _pointer(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#/"):
            raise ValueError(f"only local references are supported, got {ref!r}")
        target: Any = self.document
        for token in ref[2:].split("/"):
            target = target[token.replace("~1", "/").replace("~0", "~")]
        if not isinstance(target, Mapping):
            raise ValueError(f"{ref!r} does not point at an object")
        return target

    # -- request checks ----------------------------------------------------------------

    def _auth_problems(self, headers: Mapping[str, str]) -> list[str]:
        present = [name for name in (*self._auth_headers, _BEARER_HEADER) if name in headers]
        if not present:
            return ["auth: neither Ocp-Apim-Subscription-Key nor Authorization is present"]
        if len(present) > 1:
            return [f"auth: exactly one of {', '.join(present)} may be sent, got both"]
        value = headers[present[0]].strip()
        if present[0] == _BEARER_HEADER:
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return ["auth: Authorization must be 'Bearer <token>'"]
        elif not value:
            return [f"auth: {present[0]} is empty"]
        return []

    def _path_problems(self, op: Operation, values: Mapping[str, str]) -> list[str]:
        problems = []
        for name, param in op.parameters_in("path").items():
            value = values.get(name, "")
            if param.definition.get("format") == "uuid" and not _UUID.fullmatch(value):
                problems.append(f"path parameter {name!r}: {value!r} is not a UUID")
        return problems

    def _query_problems(self, op: Operation, query: str) -> list[str]:
        declared = op.parameters_in("query")
        pairs = parse_qsl(query, keep_blank_values=True)
        problems = []
        seen: dict[str, str] = {}
        for key, value in pairs:
            if key in seen:
                problems.append(f"query parameter {key!r} is given more than once")
            seen[key] = value
            param = declared.get(key)
            if param is None:
                problems.append(
                    f"query parameter {key!r} is not declared (allowed: {', '.join(declared)})"
                )
                continue
            problems.extend(_scalar_problems(f"query parameter {key!r}", param.definition, value))
        for name, param in declared.items():
            if param.required and name not in seen:
                problems.append(f"required query parameter {name!r} is missing")
        version = seen.get("api-version")
        if version is not None and version != self.api_version:
            problems.append(f"api-version is {version!r}, this spec is {self.api_version!r}")
        return problems

    def _body_problems(self, op: Operation, content_type: str | None, body: bytes) -> list[str]:
        form = op.parameters_in("formData")
        if form:
            return self._multipart_problems(form, content_type, body)
        bodies = list(op.parameters_in("body").values())
        if not bodies:
            return [] if not body else [f"takes no request body, got {len(body)} bytes"]
        param = bodies[0]
        if not body:
            if param.required:
                return [f"required body parameter {param.name!r} is missing (empty body)"]
            return []
        media = _media_type(content_type)
        accepted = op.consumes or ("application/json",)
        if media not in {c.lower() for c in accepted}:
            return [f"Content-Type {content_type!r} is not one of {', '.join(accepted)}"]
        if _is_binary(param.schema):
            return []
        if media != "application/json" and not media.endswith("+json"):
            return [f"Content-Type {content_type!r} is not JSON"]
        try:
            value = json.loads(body)
        except ValueError as exc:
            return [f"body is not valid JSON: {exc}"]
        return self._request_value_problems(param.schema, value, "body")

    def _multipart_problems(
        self,
        declared: Mapping[str, Parameter],
        content_type: str | None,
        body: bytes,
    ) -> list[str]:
        if _media_type(content_type) != "multipart/form-data":
            return [f"Content-Type {content_type!r} is not multipart/form-data"]
        # The email parser implements RFC 2046 multipart; a synthetic header hands it the
        # boundary from the request's Content-Type.
        assert content_type is not None  # _media_type returns "" for None
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        if not message.is_multipart() or message.defects:
            defects = ", ".join(type(d).__name__ for d in message.defects) or "no parts"
            return [f"multipart body does not parse: {defects}"]
        problems: list[str] = []
        seen: set[str] = set()
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_content_disposition() != "form-data" or not isinstance(name, str):
                problems.append("multipart part without 'Content-Disposition: form-data; name'")
                continue
            if name in seen:
                problems.append(f"multipart part {name!r} is sent more than once")
            seen.add(name)
            param = declared.get(name)
            if param is None:
                problems.append(
                    f"multipart part {name!r} is not declared (allowed: {', '.join(declared)})"
                )
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            if param.definition.get("type") == "file":
                if not part.get_filename():
                    problems.append(f"multipart file part {name!r} has no filename")
                if param.required and not data:
                    problems.append(f"required multipart file part {name!r} is empty")
                continue
            problems.extend(self._form_field_problems(param, data))
        for name, param in declared.items():
            if param.required and name not in seen:
                problems.append(f"required multipart part {name!r} is missing")
        return problems

    def _form_field_problems(self, param: Parameter, data: bytes) -> list[str]:
        named = _SERIALIZED_TYPE.search(param.definition.get("description", ""))
        if named is None:
            return []
        where = f"multipart part {param.name!r}"
        try:
            value = json.loads(data)
        except ValueError as exc:
            return [f"{where} is not valid JSON ({named.group(1)}): {exc}"]
        schema = {"$ref": f"#/definitions/{named.group(1)}"}
        return self._request_value_problems(schema, value, param.name)

    def _request_value_problems(
        self, schema: Mapping[str, Any], value: Any, where: str
    ) -> list[str]:
        return [
            *self._schema_problems(schema, value, where),
            *self._declared_problems(schema, value, where, reject_read_only=True),
        ]

    # -- response checks ---------------------------------------------------------------

    def _response_problems(
        self,
        op: Operation,
        status: int,
        body: Any,
        headers: Mapping[str, str] | None,
        *,
        strict: bool,
    ) -> list[str]:
        response = op.responses.get(str(status), op.responses.get("default"))
        if response is None:
            return [f"status {status} is not declared (declared: {', '.join(op.responses)})"]
        problems: list[str] = []
        value, parse_problem = _parse_body(body)
        schema = response.get("schema")
        if parse_problem:
            problems.append(parse_problem)
        elif status == 204 and value is not None:
            problems.append("a 204 response must not have a body")
        elif schema is None and value is not None and strict:
            problems.append(f"status {status} declares no body, got one")
        elif schema is not None and 200 <= status < 300:
            if value is None:
                problems.append(f"status {status} declares a body, got none")
            else:
                problems.extend(self._schema_problems(schema, value, "body"))
                if strict:
                    problems.extend(
                        self._declared_problems(schema, value, "body", reject_read_only=False)
                    )
        if headers is not None and strict:
            problems.extend(_header_problems(response.get("headers", {}), headers))
        return problems

    # -- schema checks -----------------------------------------------------------------

    def _schema_problems(self, schema: Mapping[str, Any], value: Any, where: str) -> list[str]:
        """jsonschema Draft 4 (Swagger 2.0's dialect); swagger-only keywords are ignored."""
        root = {**schema, "definitions": self.definitions}
        validator = Draft4Validator(root, format_checker=_FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        return [f"{_json_path(where, e.absolute_path)}: {e.message}" for e in errors]

    def _declared_problems(
        self,
        schema: Mapping[str, Any],
        value: Any,
        where: str,
        *,
        reject_read_only: bool,
    ) -> list[str]:
        """Undeclared properties (and, for requests, readOnly ones) anywhere in ``value``."""
        name, resolved = self._resolve_named(schema)
        if isinstance(value, list):
            items = resolved.get("items")
            if not isinstance(items, Mapping):
                return []
            return [
                problem
                for index, item in enumerate(value)
                for problem in self._declared_problems(
                    items, item, f"{where}[{index}]", reject_read_only=reject_read_only
                )
            ]
        if not isinstance(value, dict):
            return []
        properties, extra = self._object_shape(resolved)
        problems: list[str] = []
        for key, item in value.items():
            path = f"{where}.{key}"
            if key in properties:
                prop = properties[key]
                if reject_read_only and self._is_read_only(prop):
                    problems.append(f"{path}: readOnly property must not be sent")
                else:
                    problems.extend(
                        self._declared_problems(prop, item, path, reject_read_only=reject_read_only)
                    )
            elif isinstance(extra, Mapping):
                problems.extend(
                    self._declared_problems(extra, item, path, reject_read_only=reject_read_only)
                )
            elif extra is not True:
                problems.append(f"{path}: property is not declared by {name}")
        return problems

    def _object_shape(
        self, schema: Mapping[str, Any]
    ) -> tuple[dict[str, Mapping[str, Any]], Mapping[str, Any] | bool]:
        """Declared properties (own and from ``allOf``) and what ``additionalProperties`` allows."""
        if not {"properties", "allOf", "additionalProperties"} & schema.keys():
            # A bare {"type": "object"} is Swagger's free-form object: any key is declared.
            return {}, True
        properties: dict[str, Mapping[str, Any]] = {}
        extra: Mapping[str, Any] | bool = schema.get("additionalProperties", False)
        for part in schema.get("allOf", []):
            inherited, inherited_extra = self._object_shape(self._resolve(part))
            properties.update(inherited)
            if extra is False:
                extra = inherited_extra
        properties.update(schema.get("properties", {}))
        return properties, extra

    def _is_read_only(self, schema: Mapping[str, Any]) -> bool:
        """readOnly on the property or on any definition its ``$ref`` chain passes through."""
        while True:
            if schema.get("readOnly") is True:
                return True
            if "$ref" not in schema:
                return False
            schema = self._pointer(schema["$ref"])


@functools.cache
def result_file_validator() -> Draft7Validator:
    """Draft-7 validator of the 2024-11-15 batch result file, its ``$id`` chain resolved locally.

    The four result schemas extend each other by absolute ``$id`` (2024-11-15 → v3.2 → v3.1 →
    v3); registering them all lets the chain resolve with no network.
    """
    schemas = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((SPEC_DIR / "results").glob("*.schema.json"))
    ]
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s, default_specification=DRAFT7)) for s in schemas
    )
    top = next(
        s for s in schemas if s["$id"].endswith("transcriptionresult_v2024-11-15.schema.json")
    )
    return Draft7Validator(top, registry=registry)


def assert_valid_result_file(document: Any) -> None:
    """``document`` is a valid batch result file; the message lists every problem."""
    problems = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in result_file_validator().iter_errors(document)
    ]
    assert not problems, "\n".join(problems)


def load_example(api_version: str, name: str) -> dict[str, Any]:
    """Microsoft's example ``name`` (a file name such as "get_model.json") for ``api_version``."""
    path = SPEC_DIR / api_version / "examples" / name
    example = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(example, dict):
        raise TypeError(f"{path} does not hold a JSON object")
    return example


@functools.cache
def _load(api_version: str) -> SpeechSpec:
    if api_version not in API_VERSIONS:
        raise ValueError(f"unknown api-version {api_version!r}; known: {', '.join(API_VERSIONS)}")
    path = SPEC_DIR / api_version / "speechtotext.json"
    return SpeechSpec(api_version, json.loads(path.read_text(encoding="utf-8")))


def _compile_route(template: str) -> _Route:
    segments = template.split("/")
    # A parameter never spans "/" and, in Azure's "{id}:copy" custom-action style, never
    # holds ":" either; otherwise "/models/{id}" would also swallow "/models/{id}:copy".
    regex = "/".join(
        "".join(
            f"(?P<{piece[1:-1]}>[^/:]+)" if _PARAM.fullmatch(piece) else re.escape(piece)
            for piece in _PARAM_SPLIT.split(segment)
        )
        for segment in segments
    )
    return _Route(
        template=template,
        pattern=re.compile(regex),
        rank=tuple(bool(_PARAM.search(segment)) for segment in segments),
    )


def _media_type(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


def _is_binary(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "string" and schema.get("format") == "binary"


def _scalar_problems(where: str, definition: Mapping[str, Any], value: str) -> list[str]:
    """Type and enum checks for a non-body parameter whose raw value is ``value``."""
    problems = []
    if definition.get("type") == "integer" and not _INTEGER.fullmatch(value):
        problems.append(f"{where}: {value!r} is not an integer")
    enum = definition.get("enum")
    if enum is not None and value not in [str(v) for v in enum]:
        problems.append(f"{where}: {value!r} is not one of {enum}")
    return problems


def _header_problems(declared: Mapping[str, Any], headers: Mapping[str, str]) -> list[str]:
    """Every declared response header must be present and match its type and format."""
    lowered = {name.lower(): value for name, value in headers.items()}
    problems = []
    for name, definition in declared.items():
        value = lowered.get(name.lower())
        if value is None:
            problems.append(f"response header {name!r} is missing")
            continue
        problems.extend(_scalar_problems(f"response header {name!r}", definition, value))
        if definition.get("format") == "uri" and not _is_uri(value):
            problems.append(f"response header {name!r}: {value!r} is not a URI")
    return problems


def _parse_body(body: Any) -> tuple[Any, str | None]:
    """The JSON value of a response body (``None`` when empty) and a parse problem, if any."""
    if isinstance(body, bytes | bytearray | str):
        if not body:
            return None, None
        try:
            return json.loads(body), None
        except ValueError as exc:
            return None, f"body is not valid JSON: {exc}"
    return body, None


def _json_path(where: str, path: Iterable[str | int]) -> str:
    return where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _is_uri(instance: object) -> bool:
    """RFC 3986 absolute URI: a scheme, no whitespace, and a host for http(s)."""
    if not isinstance(instance, str):
        return True
    parts = urlsplit(instance)
    if not _URI_SCHEME.fullmatch(parts.scheme) or any(c.isspace() for c in instance):
        return False
    return parts.scheme.lower() not in {"http", "https"} or bool(parts.netloc)


def _is_date_time(instance: object) -> bool:
    """RFC 3339 date-time with a time zone; fromisoformat rejects out-of-range fields."""
    if not isinstance(instance, str):
        return True
    if not _RFC3339.fullmatch(instance):
        return False
    try:
        datetime.fromisoformat(instance.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


# Only the two formats the brief asks for: jsonschema's own "uri" and "date-time" checks
# silently pass unless optional packages (rfc3987, rfc3339-validator) are installed, and
# Swagger's int32/int64/binary/uuid formats are not JSON Schema formats.
_FORMAT_CHECKER = FormatChecker(formats=())
_FORMAT_CHECKER.checks("uri")(_is_uri)
_FORMAT_CHECKER.checks("date-time")(_is_date_time)
