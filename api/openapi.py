"""The OpenAPI document: every route of api/app.py, and one operation per registered @rpc method.

Parameter and result schemas of the methods come from their annotations, by the
mapping the per-call checks use (objects/signatures.py: `json_schema` is what
`matches` accepts). tests/e2e/test_fuzz.py holds the server to this document.
"""

from __future__ import annotations

from typing import Any

from solo.api.alarms import MAX_LIMIT
from solo.api.auth import TENANT_HEADER, TOKEN_QUERY_PARAMETER
from solo.api.calls import MAX_IDEMPOTENCY_KEY_CHARS
from solo.api.listing import MAX_LIMIT as MAX_LISTING_LIMIT
from solo.objects.naming import MAX_NAME_CHARS
from solo.objects.registry import ClassRegistry
from solo.objects.state.alarm_index import STATES

_INTEGER = {"type": "integer"}
_STRING = {"type": "string"}
_NULLABLE_INTEGER = {"type": ["integer", "null"]}
_SEQ = {"type": "integer", "description": "sequence number of the object's state"}

# An object name: 1 to 256 characters, no '/' or control characters, no surrounding whitespace.
_OBJECT_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_NAME_CHARS,
    "pattern": r"^[^/\x00-\x1f\x7f\s](?:[^/\x00-\x1f\x7f]*[^/\x00-\x1f\x7f\s])?$",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object with exactly these properties, all present but `optional`."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


_ALARM_FIELDS: dict[str, Any] = {
    "name": _STRING,
    "kind": {"enum": ["alarm", "schedule"]},
    "method": _STRING,
    "spec": _STRING,
    "state": {"enum": list(STATES)},
    "scheduled_ms": _NULLABLE_INTEGER,
    "next_ms": _NULLABLE_INTEGER,
    "retry_count": _INTEGER,
    "failures": _INTEGER,
    "last_error": {"type": ["string", "null"]},
    "last_error_ms": _NULLABLE_INTEGER,
    "last_fired_ms": _NULLABLE_INTEGER,
}

_ERROR_BODY = _object(
    {
        "code": {"type": "string", "description": "machine-readable: see the README's table"},
        "message": _STRING,
        "call_id": {"type": "string", "description": "errors of a call"},
        "type": {"type": "string", "description": "the exception's class, for a method's own errors"},
        "details": {"type": "object", "description": "a UserError's details, as the method gave them"},
        "suggestions": {
            "type": "array",
            "items": {"type": "string"},
            "description": "unknown_class, unknown_method: the served names closest to the one asked for",
        },
    },
    optional=("call_id", "type", "details", "suggestions"),
)
_CHECK = {"enum": ["ok", "unavailable"]}
_SCHEMA = {"type": "object", "description": "a JSON Schema"}
_PARAMETER = _object(
    {
        "name": _STRING,
        "type": {"type": "string", "description": "the annotation, as Python writes it"},
        "schema": _SCHEMA,
        "required": {"type": "boolean"},
        "default": {"description": "the default value, when JSON can show it"},
    },
    optional=("default",),
)
_METHOD = _object(
    {
        "name": _STRING,
        "signature": {"type": "string", "description": "as Python shows it: increment(by: int = 1) -> int"},
        "doc": {"type": ["string", "null"]},
        "parameters": {"type": "array", "items": _PARAMETER},
        "accepts_any_keyword": {"type": "boolean"},
        "result": _SCHEMA,
    }
)
_READY = _object({"status": _CHECK, "checks": _object({"redis": _CHECK, "database": _CHECK})})

SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": _ERROR_BODY}),
    "Class": _object(
        {
            "name": _STRING,
            "doc": {"type": ["string", "null"]},
            "websockets": {"type": "boolean", "description": "clients may open its WebSocket"},
            "methods": {"type": "array", "items": _METHOD},
        }
    ),
    "Alarm": _object({"object": _object({"id": _STRING, "class": _STRING, "name": _STRING}), **_ALARM_FIELDS}),
    "ObjectAlarm": _object(_ALARM_FIELDS),
    "ObjectInfo": _object(
        {
            "id": _STRING,
            "class": _STRING,
            "name": _STRING,
            "tenant": _STRING,
            "served": {"type": "boolean", "description": "false: no live worker serves its class (orphaned)"},
            "active": {"type": "boolean"},
            "owner": {"type": ["string", "null"], "description": "the worker running it (shown to operator keys only)"},
            "queued_calls": _INTEGER,
            "epoch": _INTEGER,
            "schema_version": _INTEGER,
            "state_bytes": _INTEGER,
            "seq": _SEQ,
            "created_at": {"type": "string", "format": "date-time"},
            "last_active_at": {"type": "string", "format": "date-time"},
            "alarms": {"type": "array", "items": _ref("ObjectAlarm")},
            "poisoned_calls": {
                "type": "array",
                "items": _object({"call_id": _STRING, "method": _STRING, "crashes": _INTEGER, "at_ms": _INTEGER}),
            },
        }
    ),
    "Worker": _object(
        {
            "id": _STRING,
            "host": _STRING,
            "pid": _INTEGER,
            "version": {"type": "string", "description": "solo's package version"},
            "classes": {"type": "array", "items": _STRING, "description": "the classes it serves"},
            "classes_digest": {
                "type": ["string", "null"],
                "description": "a SHA-256 prefix of the served classes' source: the same code, the same digest",
            },
            "objects": {"type": "integer", "description": "objects it holds the lease of"},
            "open_databases": _INTEGER,
            "threads_busy": _INTEGER,
            "threads": {"type": "integer", "description": "SOLO_WORKER_THREADS"},
            "started_ms": _INTEGER,
            "beat_ms": {"type": "integer", "description": "its last heartbeat (epoch ms)"},
        }
    ),
    "CallStatus": _object(
        {
            "call_id": _STRING,
            "status": {"enum": ["queued", "running", "done", "failed"]},
            "result": {"description": "the method's result (done)"},
            "error": {**_ERROR_BODY, "description": "the call's error (failed)"},
        },
        optional=("result", "error"),
    ),
    "Accepted": _object({"call_id": _STRING, "status_url": _STRING}),
    "ObjectSummary": _object(
        {
            "id": _STRING,
            "class": _STRING,
            "name": _STRING,
            "tenant": _STRING,
            "served": {"type": "boolean", "description": "a loaded class (else its objects cannot run)"},
            "active": {"type": "boolean"},
            "queued_calls": _INTEGER,
            "epoch": _INTEGER,
            "schema_version": _INTEGER,
            "state_bytes": _INTEGER,
            "seq": _SEQ,
            "created_at": {"type": "string", "format": "date-time"},
            "last_active_at": {"type": "string", "format": "date-time"},
            "alarms_pending": {"type": "integer", "description": "alarms and schedules still to fire"},
            "alarms_failed": {"type": "integer", "description": "dropped after their retries"},
        }
    ),
}


def _error(description: str = "error: see the README's table") -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _errors(*statuses: int | str) -> dict[str, Any]:
    return {str(s): _error() for s in sorted(statuses, key=str)}


# Answered at the edge (api/auth.py) before any route runs, to an operation that needs a key: none
# or an unknown one (401), a key past its rate (429), and a key short of the route's scope (403),
# which only routes needing more than `call` can be.
_KEY_ERRORS = (401, 429)
_ADMIN_KEY_ERRORS = (401, 403, 429)


def _path(name: str, schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    parameter = {"name": name, "in": "path", "required": True, "schema": schema}
    return {**parameter, "description": description} if description else parameter


# The tenant a request acts in (api/auth.py: acting_tenant); another than the key's own is 403
# unless the key is an operator's.
_TENANT_HEADER = {
    "name": TENANT_HEADER,
    "in": "header",
    "required": False,
    "description": "the tenant an operator key acts in (default: the key's own); other keys may name only their own",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
}


_ALARM_PARAMETER = _path(
    "alarm", {"type": "string", "maxLength": 200}, "`_alarm` (the object's single alarm) or a schedule's name"
)


def _object_parameters(registry: ClassRegistry) -> list[dict[str, Any]]:
    return [
        _path("class", {"enum": registry.names()}, "a served class"),
        _path("name", _OBJECT_NAME, "the object's name"),
        _TENANT_HEADER,
    ]


_CALL_HEADERS = [
    _TENANT_HEADER,
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "the same key on the same object is the same call: it runs once",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_CHARS},
    },
    {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "description": "respond-async: answer 202 at once, then poll the call",
        "schema": _STRING,
    },
]
# Every status a call may end in (README, HTTP API): solo's own, and any 4xx or 5xx a method's
# UserError chose. A method's result is its own; the 500s are a method's bug or solo's.
_CALL_ERRORS = {
    **_errors(400, 401, 403, 404, 410, 413, 422, 429, 500, 502, 503, 504, 508),
    "4XX": _error("a UserError of the method, with the status it chose"),
    "5XX": _error("a UserError of the method, with the status it chose"),
}


def _method_operation(class_name: str, method: str, description: dict[str, Any]) -> dict[str, Any]:
    parameters = description["parameters"]
    body: dict[str, Any] = {
        "type": "object",
        "properties": {name: p["schema"] for name, p in parameters.items()},
        "required": [name for name, p in parameters.items() if p["required"]],
    }
    if not description["accepts_any_keyword"]:
        body["additionalProperties"] = False
    result = _object({"result": description["result"], "call_id": _STRING})
    return {
        "post": {
            "operationId": f"{class_name}.{method}",
            "summary": (description["doc"] or f"{class_name}.{method}").split("\n\n")[0],
            "tags": [class_name],
            "parameters": [_path("name", _OBJECT_NAME, "the object's name"), *_CALL_HEADERS],
            "requestBody": {
                # No body means no arguments: a method with required ones needs one.
                "required": bool(body["required"]),
                "description": "the keyword arguments; no body means none",
                "content": {"application/json": {"schema": body}},
            },
            "responses": {
                "200": _json(result, "the method's result"),
                "202": _json(
                    _ref("Accepted"),
                    "queued (Prefer: respond-async): poll the status URL",
                    headers={"Location": {"schema": _STRING, "description": "the status URL"}},
                ),
                **_CALL_ERRORS,
            },
        }
    }


_SQLITE_FILE = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _object_paths(registry: ClassRegistry) -> dict[str, Any]:
    """The object's metadata, and an operator's actions on its state (api/operations.py)."""
    parameters = _object_parameters(registry)
    return {
        "/v1/objects/{class}/{name}": {
            "parameters": parameters,
            "get": {
                "operationId": "objects.get",
                "summary": "the object's metadata, alarms and poisoned calls",
                "responses": {"200": _json(_ref("ObjectInfo"), "metadata"), **_errors(400, 404, *_ADMIN_KEY_ERRORS)},
            },
            "delete": {
                "operationId": "objects.delete",
                "summary": "remove the object's state; the next call starts empty",
                "responses": {
                    "200": _json(_object({"deleted": {"const": True}}), "deleted"),
                    **_errors(400, 404, *_ADMIN_KEY_ERRORS),
                },
            },
        },
        "/v1/objects/{class}/{name}/ws": {
            "parameters": parameters,
            "get": {
                "operationId": "objects.websocket",
                "summary": "open a WebSocket to the object (README, WebSockets)",
                "description": (
                    "A WebSocket upgrade (Connection: Upgrade, Upgrade: websocket, Sec-WebSocket-Key, "
                    "Sec-WebSocket-Version: 13). The API key goes in the Authorization header or, as "
                    "browsers cannot set headers on a WebSocket, in the `token` query parameter; the "
                    "other query parameters reach the object's web_socket_connect (request.query). "
                    "The object's connect handler accepts (101) or refuses with its error's status. "
                    "Without the upgrade: 426 upgrade_required."
                ),
                "parameters": [
                    {
                        "name": TOKEN_QUERY_PARAMETER,
                        "in": "query",
                        "required": False,
                        "description": "the API key, instead of the Authorization header",
                        "schema": _STRING,
                    }
                ],
                "responses": {
                    "101": {"description": "upgraded: the WebSocket is open"},
                    "426": {
                        **_error("not an upgrade: this route is a WebSocket"),
                        "headers": {"Upgrade": {"schema": {"const": "websocket"}}},
                    },
                    **_errors(400, 403, 404, *_KEY_ERRORS),
                },
            },
        },
        "/v1/objects/{class}/{name}/mailbox": {
            "parameters": parameters,
            "delete": {
                "operationId": "objects.purge",
                "summary": "fail every call queued for the object with `purged`",
                "responses": {
                    "200": _json(_object({"purged": _INTEGER}), "how many were failed"),
                    **_errors(400, 404, *_ADMIN_KEY_ERRORS),
                },
            },
        },
        "/v1/objects/{class}/{name}/evict": {
            "parameters": parameters,
            "post": {
                "operationId": "objects.evict",
                "summary": "end the object's activation after its current batch; its next call hydrates it afresh",
                "responses": {
                    "200": _json(
                        _object({"evicting": {"type": "boolean", "description": "false: no worker runs it now"}}),
                        "asked",
                    ),
                    **_errors(400, 404, *_ADMIN_KEY_ERRORS),
                },
            },
        },
        "/v1/objects/{class}/{name}/alarms/{alarm}": {
            "parameters": [*parameters, _ALARM_PARAMETER],
            "delete": {
                "operationId": "alarms.cancel",
                "summary": "cancel the object's alarm or one of its schedules, through the object"
                " (an orphaned one leaves the index)",
                "responses": {
                    "200": _json(_object({"cancelled": {"const": True}}), "cancelled, durably"),
                    **_errors(400, 404, 422, 504, *_ADMIN_KEY_ERRORS),
                },
            },
        },
        "/v1/objects/{class}/{name}/alarms/{alarm}/fire-now": {
            "parameters": [*parameters, _ALARM_PARAMETER],
            "post": {
                "operationId": "alarms.fire_now",
                "summary": "make the object's alarm or one of its schedules due now",
                "responses": {
                    "200": _json(_object({"due_ms": _INTEGER}), "due from then (epoch ms)"),
                    **_errors(400, 404, 422, 504, *_ADMIN_KEY_ERRORS),
                },
            },
        },
        "/v1/objects/{class}/{name}/history": {
            "parameters": parameters,
            "get": {
                "operationId": "objects.history",
                "summary": "the object's activations, oldest first (`solo objects history`)",
                "responses": {
                    "200": _json(
                        _object(
                            {
                                "activations": {
                                    "type": "array",
                                    "items": _object(
                                        {
                                            "epoch": _INTEGER,
                                            "worker": {
                                                "type": ["string", "null"],
                                                "description": "the worker that ran it (shown to operator keys only)",
                                            },
                                            "started_at": {"type": "string", "format": "date-time"},
                                            "stopped_at": {"type": ["string", "null"], "format": "date-time"},
                                        }
                                    ),
                                }
                            }
                        ),
                        "the activations",
                    ),
                    **_errors(400, 404, *_ADMIN_KEY_ERRORS),
                },
            },
        },
        "/v1/objects/{class}/{name}/export": {
            "parameters": parameters,
            "get": {
                "operationId": "objects.export",
                "summary": "the object's state at its latest sequence, as a plain .sqlite file",
                "responses": {
                    "200": {
                        "description": "the raw database file",
                        "headers": {
                            "Solo-Seq": {"description": "the sequence exported", "schema": _INTEGER},
                            "Content-Disposition": {"schema": _STRING},
                        },
                        "content": _SQLITE_FILE,
                    },
                    **_errors(400, 404, 422, *_ADMIN_KEY_ERRORS),
                },
            },
        },
        "/v1/objects/{class}/{name}/import": {
            "parameters": parameters,
            "put": {
                "operationId": "objects.import",
                "summary": "replace the object's state with a .sqlite file (creates the object if needed)",
                "requestBody": {"required": True, "content": _SQLITE_FILE},
                "responses": {
                    "200": _json(_object({"seq": _SEQ}), "the new sequence"),
                    **_errors(400, 404, 409, 413, 415, 422, *_ADMIN_KEY_ERRORS),
                },
            },
        },
        "/v1/objects/{class}/{name}/restore": {
            "parameters": parameters,
            "post": {
                "operationId": "objects.restore",
                "summary": "return the object to an earlier sequence or time within the retention window",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    _object({"seq": _SEQ}),
                                    _object({"at": {"type": "string", "format": "date-time"}}),
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        _object({"seq": _SEQ, "restored_from": _SEQ}), "the new sequence, and the one restored"
                    ),
                    **_errors(400, 404, 413, 422, *_ADMIN_KEY_ERRORS),
                },
            },
        },
    }


def _fixed_paths() -> dict[str, Any]:
    return {
        "/v1/objects": {
            "get": {
                "operationId": "objects.list",
                "summary": "the tenant's objects in (class, name) order, a page at a time",
                "parameters": [
                    _TENANT_HEADER,
                    {"name": "class", "in": "query", "schema": _STRING, "description": "objects of this class"},
                    {
                        "name": "prefix",
                        "in": "query",
                        "schema": {"type": "string", "maxLength": MAX_NAME_CHARS},
                        "description": "names starting with this",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LISTING_LIMIT},
                        "description": "objects per page (default 100)",
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "schema": _STRING,
                        "description": "the next_cursor of the page before",
                    },
                ],
                "responses": {
                    "200": _json(
                        _object(
                            {
                                "objects": {"type": "array", "items": _ref("ObjectSummary")},
                                "next_cursor": {
                                    "type": ["string", "null"],
                                    "description": "pass it as `cursor` for the next page; null on the last",
                                },
                            }
                        ),
                        "a page of objects",
                    ),
                    **_errors(400, 422, *_ADMIN_KEY_ERRORS),
                },
            }
        },
        "/v1/calls/{call_id}": {
            "get": {
                "operationId": "calls.get",
                "summary": "status and outcome of a call, while its record is kept",
                "parameters": [_path("call_id", _STRING, "as a call's answer gave it"), _TENANT_HEADER],
                "responses": {
                    "200": _json(_ref("CallStatus"), "the call's status"),
                    **_errors(400, 403, 404, *_KEY_ERRORS),
                },
            }
        },
        "/v1/alarms": {
            "get": {
                "operationId": "alarms.list",
                "summary": "alarms and schedules across the tenant's objects, due soonest first, then failed ones",
                "parameters": [
                    _TENANT_HEADER,
                    {
                        "name": "due_before",
                        "in": "query",
                        "description": "epoch milliseconds, or an ISO-8601 time (UTC without an offset)",
                        "schema": {
                            "anyOf": [
                                {"type": "string", "pattern": "^[0-9]{1,18}$"},
                                {"type": "string", "format": "date-time"},
                            ]
                        },
                    },
                    {"name": "class", "in": "query", "schema": _STRING},
                    {"name": "state", "in": "query", "schema": {"enum": list(STATES)}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
                ],
                "responses": {
                    "200": _json(_object({"alarms": {"type": "array", "items": _ref("Alarm")}}), "the alarms"),
                    **_errors(400, 422, *_ADMIN_KEY_ERRORS),
                },
            },
            "delete": {
                "operationId": "alarms.purge",
                "summary": "remove the orphaned alarms of a class no longer served from the scheduler's index",
                "parameters": [
                    _TENANT_HEADER,
                    {"name": "class", "in": "query", "required": True, "schema": _STRING},
                ],
                "responses": {
                    "200": _json(_object({"purged": _INTEGER}), "how many were removed"),
                    **_errors(400, 409, 422, *_ADMIN_KEY_ERRORS),
                },
            },
        },
        "/v1/classes": {
            "get": {
                "operationId": "classes.list",
                "summary": "the served classes, their @rpc methods and signatures",
                "responses": {
                    "200": _json(_object({"classes": {"type": "array", "items": _ref("Class")}}), "the classes"),
                    **_errors(*_KEY_ERRORS),
                },
            }
        },
        "/v1/workers": {
            "get": {
                "operationId": "workers.list",
                "summary": "the live worker processes, from their heartbeats (needs an operator key)",
                "responses": {
                    "200": _json(_object({"workers": {"type": "array", "items": _ref("Worker")}}), "the workers"),
                    **_errors(*_ADMIN_KEY_ERRORS),
                },
            }
        },
        "/v1/whoami": {
            "get": {
                "operationId": "whoami",
                "summary": "who the request acts as: key id, tenant, scope",
                "responses": {
                    "200": _json(
                        _object({"key_id": {"type": ["string", "null"]}, "tenant": _STRING, "scope": _STRING}),
                        "the principal",
                    ),
                    **_errors(*_KEY_ERRORS),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "the process is up",
                "security": [],
                "responses": {"200": _json(_object({"status": {"const": "ok"}}), "up")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Redis and the shared database answer",
                "security": [],
                "responses": {
                    "200": _json(_READY, "ready"),
                    "503": _json(_READY, "not ready: a check is unavailable"),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "this API process's metrics, in Prometheus' text format (needs an operator key)",
                "responses": {
                    "200": {
                        "description": "the metrics",
                        "content": {
                            "text/plain": {"schema": _STRING},
                            "application/openmetrics-text": {"schema": _STRING},
                        },
                    },
                    **_errors(*_ADMIN_KEY_ERRORS),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "this document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "the OpenAPI document")},
            }
        },
        "/docs": {
            "get": {
                "operationId": "docs",
                "summary": "this document as a page to read and try (Swagger UI, served offline)",
                "security": [],
                "responses": {"200": {"description": "the page", "content": {"text/html": {"schema": _STRING}}}},
            }
        },
        "/docs/{file}": {
            "get": {
                "operationId": "docs.asset",
                "summary": "a static file of the API page",
                "security": [],
                "parameters": [{"name": "file", "in": "path", "required": True, "schema": _STRING}],
                "responses": {
                    "200": {
                        "description": "the file",
                        "content": {
                            "text/css": {"schema": _STRING},
                            "text/javascript": {"schema": _STRING},
                            "image/png": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "404": _error("no such file"),
                },
            }
        },
        "/pages/{page}": {
            "get": {
                "operationId": "page",
                "summary": "a static page of a served application (pages/*.html next to a module of SOLO_OBJECTS)",
                "security": [],
                "parameters": [{"name": "page", "in": "path", "required": True, "schema": _STRING}],
                "responses": {
                    "200": {"description": "the page", "content": {"text/html": {"schema": _STRING}}},
                    "404": {"description": "no such page"},
                },
            }
        },
    }


def _tag_description(cls: type) -> dict[str, str]:
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    return {"description": doc} if doc else {}


def openapi_document(registry: ClassRegistry) -> dict[str, Any]:
    paths: dict[str, Any] = {**_object_paths(registry), **_fixed_paths()}
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
        # The served classes' sections first on /docs, above the operator's routes (untagged: "default").
        "tags": [{"name": name, **_tag_description(registry.get(name))} for name in registry.names()],
        # Every operation needs an API key (SOLO_AUTH=keys) unless it says `security: []`.
        "components": {"schemas": SCHEMAS, "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
        "security": [{"apiKey": []}],
    }
