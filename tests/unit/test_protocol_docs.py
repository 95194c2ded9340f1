"""Keep docs/protocol.md and docs/asyncapi.yaml in step with the code they describe.

docs/asyncapi.yaml is generated from letschat_protocol (`python -m letschat_protocol.asyncapi`),
and the committed file must be what the generator writes. The frame types, payload fields, close
codes, error codes and REST routes are read from the code; a new frame, field, code or route
fails here until the documents describe it.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import typing
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import WebSocketRoute

from backend_services import web
from backend_services.auth_service import routes as auth_routes
from backend_services.core.errors import AppError, BadFrame, RateLimited
from backend_services.message_service import frames, websocket
from backend_services.message_service import routes as message_routes
from letschat_protocol import (
    Change,
    ClientFrame,
    CloseCode,
    Conversation,
    ErrorCode,
    Message,
    Presence,
    ServerFrame,
    User,
    client_frame_adapter,
    parse_server_frame,
)
from letschat_protocol import asyncapi as generator

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI_PATH = ROOT / "docs" / "asyncapi.yaml"
PROTOCOL_PATH = ROOT / "docs" / "protocol.md"
# The official AsyncAPI 3.0.0 JSON Schema, as the npm package @asyncapi/specs ships it.
SPEC_SCHEMA_ENV = "LETSCHAT_ASYNCAPI_SCHEMA"
SPEC_SCHEMA_DEFAULT = (
    ROOT / ".tools" / "asyncapi-specs" / "node_modules" / "@asyncapi" / "specs" / "schemas"
)
SPEC_SCHEMA_INSTALL = (
    "npm install --prefix .tools/asyncapi-specs --no-save --no-audit --no-fund "
    "@asyncapi/specs@6.11.1"
)
DOC_URI = "urn:letschat:asyncapi"

# The document's own examples' cast.
USER, MESSAGE = generator.ADA, generator.MESSAGE
CONVERSATION = generator.LUNCH.model_copy(
    update={"last_seq": 42, "last_message": MESSAGE, "unread": 3, "last_read_seq": 39}
)
# A sample argument for each parameter type of the functions in frames.py.
SAMPLES: dict[Any, Any] = {
    User: USER,
    User | None: USER,
    Message: MESSAGE,
    Change: Change(change=18, message=generator.EDITED),
    Conversation: CONVERSATION,
    AppError: RateLimited(retry_after=2),
    str: MESSAGE.conversation_id,
    int: 7,
    bool: True,
    list[Presence]: [Presence(user_id=USER.id, status="away")],
    datetime: datetime(2025, 1, 2, 12, 10, 0, tzinfo=UTC),
}


# --- reading the documents ------------------------------------------------------------------


@cache
def asyncapi() -> dict[str, Any]:
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@cache
def protocol_text() -> str:
    return PROTOCOL_PATH.read_text(encoding="utf-8")


def resolve(ref: str) -> Any:
    """The node a local `$ref` (`#/a/b`) points at in the AsyncAPI document."""
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node: Any = asyncapi()
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def deref(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(node["$ref"])
    return node


def payloads_by_type(action: str) -> dict[str, dict[str, Any]]:
    """Frame type -> payload schema, for the messages of every operation with `action`."""
    found: dict[str, dict[str, Any]] = {}
    for name, operation in asyncapi()["operations"].items():
        if operation["action"] != action:
            continue
        for ref in operation["messages"]:
            payload = deref(deref(ref)["payload"])
            frame_type = payload["properties"]["type"]["const"]
            assert found.get(frame_type, payload) is payload, f"{name}: two `{frame_type}` schemas"
            found[frame_type] = payload
    return found


def properties(schema: dict[str, Any]) -> set[str]:
    return set(deref(schema)["properties"])


# --- reading the code -----------------------------------------------------------------------


def frame_models(union: Any) -> dict[str, type[BaseModel]]:
    """Frame type -> model, for every member of a tagged union of frames."""
    models: dict[str, type[BaseModel]] = {}
    for model in typing.get_args(typing.get_args(union)[0]):
        (frame_type,) = typing.get_args(model.model_fields["type"].annotation)
        models[frame_type] = model
    return models


def client_frame_models() -> dict[str, type[BaseModel]]:
    return frame_models(ClientFrame)


def _public_functions(module: ModuleType) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isfunction(value)
        and value.__module__ == module.__name__
        and not name.startswith("_")
    }


@cache
def server_frames() -> tuple[dict[str, Any], ...]:
    """One sample of every frame frames.py can build, plus an error with its context fields."""
    built: list[str] = []
    for name, function in _public_functions(frames).items():
        hints = typing.get_type_hints(function)
        args = []
        for parameter in inspect.signature(function).parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            hint = hints[parameter.name]
            assert hint in SAMPLES, f"frames.{name} takes a {hint}: add a sample to SAMPLES"
            args.append(SAMPLES[hint])
        built.append(function(*args))
    built.extend(
        value
        for name, value in vars(frames).items()
        if not name.startswith("_") and isinstance(value, str) and value.startswith("{")
    )
    built.append(
        frames.error(
            BadFrame(),
            frame_type="send",
            conversation_id=MESSAGE.conversation_id,
            client_msg_id="c-0002",
        )
    )
    built.append(
        frames.error(
            BadFrame(),
            frame_type="edit",
            conversation_id=MESSAGE.conversation_id,
            message_id=MESSAGE.id,
        )
    )
    return tuple(json.loads(text) for text in built)


def close_codes() -> dict[str, int]:
    return {code.name: code.value for code in CloseCode}


# --- the AsyncAPI document --------------------------------------------------------------------


def test_the_committed_asyncapi_document_is_the_generated_one() -> None:
    assert ASYNCAPI_PATH.read_text(encoding="utf-8") == generator.render(), (
        "docs/asyncapi.yaml is out of date: run `python -m letschat_protocol.asyncapi`"
    )


def test_the_generated_document_reads_back_as_generated() -> None:
    """The hand-rolled YAML writer: what PyYAML reads is the document it was given."""
    assert yaml.safe_load(generator.render()) == json.loads(json.dumps(generator.document()))


def test_asyncapi_describes_the_ws_endpoint() -> None:
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    assert {(s["protocol"], s["host"]) for s in document["servers"].values()} == {
        ("ws", "localhost:8002")
    }
    assert [c["address"] for c in document["channels"].values()] == ["/ws"]
    ws_paths = {r.path for r in websocket.router.routes if isinstance(r, WebSocketRoute)}
    assert ws_paths == {"/ws"}


def test_every_client_frame_is_documented() -> None:
    assert set(payloads_by_type("receive")) == set(client_frame_models())


def test_every_server_frame_is_documented() -> None:
    assert set(payloads_by_type("send")) == {frame["type"] for frame in server_frames()}


def test_the_service_builds_every_server_frame_and_the_protocol_reads_each_back() -> None:
    assert {frame["type"] for frame in server_frames()} == set(frame_models(ServerFrame))
    for frame in server_frames():
        parsed = parse_server_frame(json.dumps(frame))
        assert parsed is not None
        assert parsed.model_dump(mode="json") == frame


@pytest.mark.parametrize("frame_type", sorted(client_frame_models()))
def test_client_frame_payload_matches_its_model(frame_type: str) -> None:
    model = client_frame_models()[frame_type]
    payload = payloads_by_type("receive")[frame_type]
    assert properties(payload) == set(model.model_fields)
    assert set(payload["required"]) == set(model.model_json_schema()["required"])
    assert payload["additionalProperties"] is False  # The service rejects unknown fields.


def test_server_frame_payloads_list_exactly_the_fields_sent() -> None:
    documented = payloads_by_type("send")
    sent: dict[str, set[str]] = {}
    for frame in server_frames():
        payload = documented[frame["type"]]
        assert set(payload["required"]) <= set(frame), frame
        assert set(frame) <= properties(payload), frame
        sent.setdefault(frame["type"], set()).update(frame)
    for frame_type, fields in sent.items():
        assert properties(documented[frame_type]) == fields, frame_type


def test_error_frame_echoes_client_frame_types() -> None:
    error = payloads_by_type("send")["error"]
    assert set(error["properties"]["frame_type"]["enum"]) == set(client_frame_models())


@pytest.mark.parametrize("model", [User, Message, Conversation], ids=lambda m: m.__name__)
def test_model_schema_lists_exactly_the_model_fields(model: type[BaseModel]) -> None:
    schema = asyncapi()["components"]["schemas"][model.__name__]
    assert set(schema["properties"]) == set(model.model_fields)
    assert set(schema["required"]) == set(model.model_json_schema(mode="serialization")["required"])
    # What the service sends may grow fields: clients must not refuse them.
    assert schema.get("additionalProperties", True) is not False


@pytest.mark.parametrize("frame_type", sorted(frame_models(ServerFrame)))
def test_server_frame_schemas_let_the_service_add_fields(frame_type: str) -> None:
    assert payloads_by_type("send")[frame_type].get("additionalProperties", True) is not False


def test_client_frame_examples_are_accepted_by_the_service() -> None:
    received = [
        deref(ref)
        for operation in asyncapi()["operations"].values()
        if operation["action"] == "receive"
        for ref in operation["messages"]
    ]
    for frame_type in payloads_by_type("receive"):
        # The client's frames only: a server frame may share a `type` (`read`, `typing`).
        examples = [
            example["payload"]
            for message in received
            if deref(message["payload"])["properties"]["type"].get("const") == frame_type
            for example in message.get("examples", ())
        ]
        assert examples, f"no example for the `{frame_type}` client frame"
        for example in examples:
            frame = client_frame_adapter.validate_json(json.dumps(example))
            assert frame.type == frame_type


def test_close_codes_are_documented() -> None:
    codes = close_codes()
    assert codes, "CloseCode has no codes?"
    documented = {
        entry["code"]: entry["name"] for entry in asyncapi()["channels"]["ws"]["x-close-codes"]
    }
    assert documented == {value: name for name, value in codes.items()}
    text = protocol_text()
    for name, value in codes.items():
        assert re.search(rf"^\| {value} \| `{name}` \|", text, re.MULTILINE), (
            f"close code {value} ({name}) has no row in docs/protocol.md"
        )


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_error_code_is_documented(code: ErrorCode) -> None:
    assert re.search(rf"^\| `{code.value}` \|", protocol_text(), re.MULTILINE), (
        f"error code {code.value} has no row in docs/protocol.md"
    )


def test_every_rest_route_is_documented() -> None:
    routers = [auth_routes.router, message_routes.router, web.health_router({})]
    routes = [route for router in routers for route in router.routes if isinstance(route, APIRoute)]
    assert routes
    text = protocol_text()
    missing = [
        f"{method} {route.path}"
        for route in routes
        for method in sorted(route.methods)
        if f"`{method} {route.path}`" not in text
    ]
    assert not missing, f"REST routes missing from docs/protocol.md: {missing}"


# --- validation with JSON Schema --------------------------------------------------------------


def _jsonschema() -> ModuleType:
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - a setup problem, reported as a failure
        pytest.fail("jsonschema is not installed: it is in the dev extras (pip install -e .[dev])")
    return jsonschema


def _payload_validator(pointer: str) -> Any:
    """A validator for the schema at `pointer` in the AsyncAPI document ($refs resolved)."""
    jsonschema = _jsonschema()
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    resource = Resource.from_contents(asyncapi(), default_specification=DRAFT7)
    registry: Registry[Any] = Registry().with_resource(DOC_URI, resource)
    return jsonschema.Draft7Validator({"$ref": f"{DOC_URI}{pointer}"}, registry=registry)


def test_frames_and_examples_validate_against_their_payload_schemas() -> None:
    messages = asyncapi()["components"]["messages"]
    sent: dict[str, str] = {}  # Frame type -> pointer to the payload of its message.
    for operation in asyncapi()["operations"].values():
        if operation["action"] == "send":
            for ref in operation["messages"]:
                message_ref = resolve(ref["$ref"])["$ref"]  # channel message -> components
                payload = deref(resolve(message_ref)["payload"])
                sent[payload["properties"]["type"]["const"]] = f"{message_ref}/payload"
    for frame in server_frames():
        _payload_validator(sent[frame["type"]]).validate(frame)
    for key, message in messages.items():
        validator = _payload_validator(f"#/components/messages/{key}/payload")
        for example in message.get("examples", ()):
            validator.validate(example["payload"])


def _spec_schema_path() -> Path:
    configured = os.environ.get(SPEC_SCHEMA_ENV)
    return Path(configured) if configured else SPEC_SCHEMA_DEFAULT / "3.0.0.json"


def test_asyncapi_document_is_valid_asyncapi_3() -> None:
    """Against the official JSON Schema, read from disk: no network at test time."""
    path = _spec_schema_path()
    if not path.is_file():
        pytest.fail(
            f"the AsyncAPI 3.0.0 JSON Schema is not at {path}. Install it with "
            f"`{SPEC_SCHEMA_INSTALL}` (or set {SPEC_SCHEMA_ENV} to a copy of schemas/3.0.0.json "
            "from @asyncapi/specs)"
        )
    jsonschema = _jsonschema()
    spec = json.loads(path.read_text(encoding="utf-8"))
    assert spec["$id"] == "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
    validator = jsonschema.Draft7Validator(spec)
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(asyncapi())
    ]
    assert not errors, "docs/asyncapi.yaml is not valid AsyncAPI 3.0.0:\n" + "\n".join(errors)
    # The schema really is checking: an operation without an action must be rejected.
    broken = json.loads(json.dumps(asyncapi()))
    del broken["operations"]["receiveAuth"]["action"]
    assert not validator.is_valid(broken)
