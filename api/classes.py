"""GET /v1/classes: the served classes, their @rpc methods and signatures, as JSON.

What /openapi.json says about the methods, shaped for a person or a tool listing what it
may call: each parameter's type and JSON Schema, whether it is required, its default.
Any key may read it (scope `call`): it names classes and methods, never objects.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from solo.objects.registry import ClassRegistry
from solo.objects.signatures import MethodSpec, json_schema


def _class_doc(cls: type) -> str | None:
    """The class's own docstring's first paragraph (not DurableObject's, which getdoc would inherit)."""
    doc = vars(cls).get("__doc__")
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()) if doc else None


def _default(value: Any) -> dict[str, Any]:
    """A parameter's default, when JSON can show it."""
    if value is inspect.Parameter.empty:
        return {}
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return {}
    return {"default": value}


def describe_method(spec: MethodSpec) -> dict[str, Any]:
    described = spec.describe()
    return {
        "name": spec.name,
        "signature": spec.signature(),
        "doc": spec.doc,
        "parameters": [
            {"name": p.name, **described["parameters"][p.name], **_default(p.default)} for p in spec.parameters
        ],
        "accepts_any_keyword": spec.accepts_any_keyword,
        "result": json_schema(spec.hints.get("return", inspect.Parameter.empty)),
    }


def describe_classes(registry: ClassRegistry) -> list[dict[str, Any]]:
    described = []
    for name in registry.names():
        cls = registry.get(name)
        described.append(
            {
                "name": name,
                "doc": _class_doc(cls),
                "websockets": callable(getattr(cls, "web_socket_message", None)),
                "methods": [describe_method(spec) for _, spec in sorted(cls.__solo_methods__.items())],
            }
        )
    return described


class ClassListing:
    def __init__(self, registry: ClassRegistry) -> None:
        self.registry = registry

    async def list(self, request: Request) -> JSONResponse:
        return JSONResponse({"classes": describe_classes(self.registry)})
