"""The OpenAPI document: fixed routes plus one operation per registered @rpc method."""

from __future__ import annotations

from typing import Any

from solo.objects.registry import ClassRegistry

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
                **_error_responses(400, 401, 403, 404, 413, 422, 429, 500, 504),
            },
        }
    }


_OBJECT_PARAMETERS = [
    {"name": "class", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
]
_SQLITE_FILE = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_SEQ = {"type": "integer", "description": "sequence number of the object's state"}


def _json_body(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"application/json": {"schema": {"type": "object", "properties": properties, **extra}}}


def _lifecycle_paths() -> dict[str, Any]:
    """Export, import, restore and delete of an object's durable state (api/operations.py)."""
    return {
        "/v1/objects/{class}/{name}/export": {
            "get": {
                "operationId": "objects.export",
                "summary": "the object's state at its latest sequence, as a plain .sqlite file",
                "parameters": _OBJECT_PARAMETERS,
                "responses": {
                    "200": {
                        "description": "the raw database file",
                        "headers": {
                            "Solo-Seq": {"description": "the sequence exported", "schema": {"type": "integer"}},
                            "Content-Disposition": {"schema": {"type": "string"}},
                        },
                        "content": _SQLITE_FILE,
                    },
                    **_error_responses(400, 404),
                },
            }
        },
        "/v1/objects/{class}/{name}/import": {
            "put": {
                "operationId": "objects.import",
                "summary": "replace the object's state with a .sqlite file (creates the object if needed)",
                "parameters": _OBJECT_PARAMETERS,
                "requestBody": {"required": True, "content": _SQLITE_FILE},
                "responses": {
                    "200": {"description": "the new sequence", "content": _json_body({"seq": _SEQ})},
                    **_error_responses(400, 404, 413, 415, 422),
                },
            }
        },
        "/v1/objects/{class}/{name}/restore": {
            "post": {
                "operationId": "objects.restore",
                "summary": "return the object to an earlier sequence or time within the retention window",
                "parameters": _OBJECT_PARAMETERS,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {
                                        "type": "object",
                                        "properties": {"seq": _SEQ},
                                        "required": ["seq"],
                                        "additionalProperties": False,
                                    },
                                    {
                                        "type": "object",
                                        "properties": {"at": {"type": "string", "format": "date-time"}},
                                        "required": ["at"],
                                        "additionalProperties": False,
                                    },
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "the new sequence, and the one restored",
                        "content": _json_body({"seq": _SEQ, "restored_from": _SEQ}),
                    },
                    **_error_responses(400, 404, 422),
                },
            }
        },
    }


def openapi_document(registry: ClassRegistry) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/v1/objects/{class}/{name}": {
            "get": {
                "summary": "object metadata",
                "responses": {"200": {"description": "metadata"}, **_error_responses(400, 404)},
            },
            "delete": {
                "operationId": "objects.delete",
                "summary": "remove the object's state; the next call starts empty",
                "parameters": _OBJECT_PARAMETERS,
                "responses": {
                    "200": {"description": "deleted", "content": _json_body({"deleted": {"type": "boolean"}})},
                    **_error_responses(400, 404),
                },
            },
        },
        **_lifecycle_paths(),
        "/v1/calls/{call_id}": {
            "get": {
                "summary": "status and outcome of a call",
                "responses": {"200": {"description": "call status"}, **_error_responses(404)},
            }
        },
        "/v1/whoami": {
            "get": {
                "summary": "who the request acts as: key id, tenant, scope",
                "responses": {"200": {"description": "the principal"}, **_error_responses(401)},
            }
        },
        "/healthz": {
            "get": {"summary": "the process is up", "security": [], "responses": {"200": {"description": "ok"}}}
        },
        "/readyz": {
            "get": {
                "summary": "Redis and the shared database are reachable",
                "security": [],
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
    return {
        "openapi": "3.1.0",
        "info": {"title": "solo", "version": "0.1.0"},
        "paths": paths,
        # Every operation needs an API key (SOLO_AUTH=keys) unless it says `security: []`.
        "components": {"securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
        "security": [{"apiKey": []}],
    }
