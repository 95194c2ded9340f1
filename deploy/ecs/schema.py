"""Print a JSON Schema for the task definition files in deploy/ecs/.

AWS publishes no JSON Schema for `aws ecs register-task-definition --cli-input-json`, which is
what amazon-ecs-deploy-task-definition sends. botocore's ECS service model describes that input
exactly (every field, type, enum and bound), so the schema is built from it: a misspelt key, a
wrong type or an unknown enum value fails validation offline.

    python deploy/ecs/schema.py > .tools/ecs-task-definition.schema.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

import botocore
import botocore.session
from botocore.model import Shape

# Enough for every ECS structure; a deeper one would point at a loop in the conversion.
_MAX_SHAPES = 2000


def _convert(shape: Shape, definitions: dict[str, Any]) -> dict[str, Any]:
    """A `$ref` to the definition of `shape`, adding it (and what it uses) to `definitions`."""
    name = shape.name
    if name not in definitions:
        if len(definitions) > _MAX_SHAPES:
            raise RuntimeError("too many shapes")
        definitions[name] = {}  # Placeholder first: shapes may refer to themselves.
        definitions[name] = _definition(shape, definitions)
    return {"$ref": f"#/$defs/{name}"}


def _definition(shape: Shape, definitions: dict[str, Any]) -> dict[str, Any]:
    bounds = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        return {
            "type": "object",
            "properties": {key: _convert(value, definitions) for key, value in members.items()},
            "required": list(shape.required_members),  # type: ignore[attr-defined]
            "additionalProperties": False,
        }
    if kind == "list":
        schema: dict[str, Any] = {
            "type": "array",
            "items": _convert(shape.member, definitions),  # type: ignore[attr-defined]
        }
        if "min" in bounds:
            schema["minItems"] = bounds["min"]
        if "max" in bounds:
            schema["maxItems"] = bounds["max"]
        return schema
    if kind == "map":
        return {
            "type": "object",
            "additionalProperties": _convert(shape.value, definitions),  # type: ignore[attr-defined]
        }
    if kind == "string":
        schema = {"type": "string"}
        if shape.enum:  # type: ignore[attr-defined]
            schema["enum"] = list(shape.enum)  # type: ignore[attr-defined]
        if "min" in bounds:
            schema["minLength"] = bounds["min"]
        if "max" in bounds:
            schema["maxLength"] = bounds["max"]
        return schema
    if kind in ("integer", "long"):
        schema = {"type": "integer"}
        if "min" in bounds:
            schema["minimum"] = bounds["min"]
        if "max" in bounds:
            schema["maximum"] = bounds["max"]
        return schema
    if kind in ("double", "float"):
        return {"type": "number"}
    if kind == "boolean":
        return {"type": "boolean"}
    # timestamp, blob: never in a task definition file, but representable.
    return {"type": "string"}


def task_definition_schema() -> dict[str, Any]:
    """JSON Schema of ECS RegisterTaskDefinition's input, from botocore's service model."""
    model = botocore.session.get_session().get_service_model("ecs")
    request = model.operation_model("RegisterTaskDefinition").input_shape
    definitions: dict[str, Any] = {}
    root = _convert(request, definitions)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"ECS RegisterTaskDefinition input (botocore {botocore.__version__})",
        **root,
        "$defs": definitions,
    }


if __name__ == "__main__":
    json.dump(task_definition_schema(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
