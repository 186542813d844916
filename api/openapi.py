"""The OpenAPI document: fixed routes plus one operation per registered @rpc method."""

from __future__ import annotations

from typing import Any

from objects.definition import ClassRegistry

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
}
_JSON_TYPES = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
}


def _error_responses(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": "error", "content": {"application/json": {"schema": _ERROR}}} for s in statuses}


def _method_operation(class_name: str, method: str, description: dict[str, Any]) -> dict[str, Any]:
    properties = {
        name: ({"type": _JSON_TYPES[p["type"]]} if p["type"] in _JSON_TYPES else {})
        for name, p in description["parameters"].items()
    }
    required = [name for name, p in description["parameters"].items() if p["required"]]
    return {
        "post": {
            "operationId": f"{class_name}.{method}",
            "summary": description["doc"] or f"{class_name}.{method}",
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}},
                {"name": "Prefer", "in": "header", "required": False, "schema": {"type": "string"}},
            ],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {"schema": {"type": "object", "properties": properties, "required": required}}
                },
            },
            "responses": {
                "200": {
                    "description": "the method's result",
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"result": {}, "call_id": {"type": "string"}}}
                        }
                    },
                },
                "202": {"description": "accepted (Prefer: respond-async)"},
                **_error_responses(400, 404, 413, 422, 500, 504),
            },
        }
    }


def openapi_document(registry: ClassRegistry) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/v1/objects/{class}/{name}": {
            "get": {
                "summary": "object metadata",
                "responses": {"200": {"description": "metadata"}, **_error_responses(400, 404)},
            }
        },
        "/v1/calls/{call_id}": {
            "get": {
                "summary": "status and outcome of a call",
                "responses": {"200": {"description": "call status"}, **_error_responses(404)},
            }
        },
        "/healthz": {"get": {"summary": "the process is up", "responses": {"200": {"description": "ok"}}}},
        "/readyz": {
            "get": {
                "summary": "Redis and the shared database are reachable",
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
    }
    for class_name in registry.names():
        cls = registry.get(class_name)
        for method, spec in sorted(cls.__solo_methods__.items()):
            paths[f"/v1/objects/{class_name}/{{name}}/{method}"] = _method_operation(
                class_name, method, spec.describe()
            )
    return {"openapi": "3.1.0", "info": {"title": "solo", "version": "0.1.0"}, "paths": paths}
