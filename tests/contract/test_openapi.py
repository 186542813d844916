"""The OpenAPI document, as served, against the routes the application serves, on both backends.

tests/e2e/test_fuzz.py holds the running system to this document; here the
document is held to the application: every route, every path parameter, and
the schemas of @rpc methods from their annotations.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from starlette.routing import Route, WebSocketRoute

from solo import DurableObject, rpc
from solo.api.auth import ROUTE_SCOPES, is_console
from solo.objects.signatures import INT_MAX, INT_MIN
from solo.testing.inprocess import InProcessSystem

INT = {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX}


class OpenApiProbe(DurableObject):
    """Annotations of every kind the signature checks know."""

    @rpc
    def everything(
        self,
        count: int,
        ratio: float | None = None,
        tags: list[str] | None = None,
        scores: dict[str, float] | None = None,
        mode: str | int = "a",
        level: int | None = None,
        flag: bool = False,
    ) -> dict[str, list[int]]:
        return {}

    @rpc
    def nothing(self) -> None:
        return None

    @rpc
    def anything(self, value=None):  # unannotated: any JSON
        return value

    @rpc
    def keywords(self, first: str, **rest) -> list[str | None]:
        return [first]


@pytest.fixture
def http(settings, redis_client, async_redis_client):
    with InProcessSystem(settings, redis_client, async_redis_client).running() as client:
        yield client


@pytest.fixture
def document(http) -> dict:
    response = http.get("/openapi.json")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()  # raises on a document off the OpenAPI 3.1 schema


def test_every_route_and_method_is_documented_with_its_path_parameters(http, document):
    paths = document["paths"]
    for route in http.app.routes:
        if isinstance(route, WebSocketRoute):  # documented as the GET of the same path (the upgrade)
            assert "get" in paths[route.path.replace("{class_name}", "{class}")], f"{route.path} is not documented"
            continue
        if is_console(route.path):  # a browser's pages and forms (session cookie, CSRF token), not an API
            continue
        assert isinstance(route, Route)
        template = route.path.replace("{class_name}", "{class}")
        if template.endswith("/{method}"):  # one operation per @rpc method: the next test
            continue
        assert template in paths, f"{route.path} is not documented"
        for method in route.methods - {"HEAD"}:
            assert method.lower() in paths[template], f"{method} {route.path} is not documented"
    for path, item in paths.items():
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        for method, operation in item.items():
            if method == "parameters":
                continue
            names = declared | {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", path)), f"{method.upper()} {path}: path parameters {names}"
            if path.endswith("/ws"):  # the upgrade: 101, or 426 without it
                assert {"101", "426"} <= set(operation["responses"]), path
                continue
            assert "200" in operation["responses"]
            assert "content" in operation["responses"]["200"], f"{method.upper()} {path}: no 200 schema"


def test_every_operation_that_needs_a_key_documents_the_answers_of_the_key_check(document):
    # 401 (no valid key) and 429 (past its rate) anywhere a key is needed; 403 where the route needs more
    # than the `call` scope, or takes Solo-Tenant (another tenant than the key's own, named by a key that
    # is not an operator's). The open operations say `security: []`, and need no key.
    for path, item in document["paths"].items():
        route = path.replace("{class}", "{class_name}")
        if re.fullmatch(r"/v1/objects/\w+/{name}/\w+", path) and route not in {p for _, p in ROUTE_SCOPES}:
            route = "/v1/objects/{class_name}/{name}/{method}"  # an @rpc method's operation
        for method, operation in item.items():
            if method == "parameters":
                continue
            scope = ROUTE_SCOPES[(method.upper(), route)]
            statuses = set(operation["responses"])
            if scope is None:
                assert operation["security"] == [] and not statuses & {"401", "403", "429"}, path
                continue
            assert "security" not in operation, path  # the document's default: the Bearer key
            assert {"401", "429"} <= statuses, f"{method.upper()} {path}"
            parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
            names_tenant = any(p["name"] == "Solo-Tenant" for p in parameters)
            assert ("403" in statuses) == (scope != "call" or names_tenant), f"{method.upper()} {path}"


def test_every_rpc_method_of_every_class_has_an_operation(http, document):
    registry = http.app.state.api.registry
    for class_name in registry.names():
        for method in registry.get(class_name).__solo_methods__:
            operation = document["paths"][f"/v1/objects/{class_name}/{{name}}/{method}"]["post"]
            assert operation["operationId"] == f"{class_name}.{method}"
    assert document["paths"]["/v1/objects/{class}/{name}"]["parameters"][0]["schema"] == {"enum": registry.names()}


def test_the_served_classes_come_first_on_the_api_page_with_their_docstrings(http, document):
    # Swagger UI lays out sections in the order of the document's tags: the classes, then the routes without one
    registry = http.app.state.api.registry
    assert [tag["name"] for tag in document["tags"]] == registry.names()
    (counter,) = [tag for tag in document["tags"] if tag["name"] == "Counter"]
    assert counter["description"] == registry.get("Counter").__doc__.strip().split("\n\n")[0]


def test_parameter_and_result_schemas_follow_the_annotations(document):
    def operation(method: str) -> tuple[dict, dict]:
        post = document["paths"][f"/v1/objects/OpenApiProbe/{{name}}/{method}"]["post"]
        body = post["requestBody"]["content"]["application/json"]["schema"]
        assert post["requestBody"]["required"] == bool(body["required"])  # no body: no arguments
        result = post["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["result"]
        return body, result

    body, result = operation("everything")
    assert body["properties"] == {
        "count": INT,
        "ratio": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        "scores": {"anyOf": [{"type": "object", "additionalProperties": {"type": "number"}}, {"type": "null"}]},
        "mode": {"anyOf": [{"type": "string"}, INT]},
        "level": {"anyOf": [INT, {"type": "null"}]},
        "flag": {"type": "boolean"},
    }
    assert body["required"] == ["count"] and body["additionalProperties"] is False
    assert result == {"type": "object", "additionalProperties": {"type": "array", "items": INT}}
    assert operation("nothing") == (
        {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
        {"type": "null"},
    )
    body, result = operation("anything")
    assert body["properties"] == {"value": {}} and result == {}
    body, result = operation("keywords")
    assert "additionalProperties" not in body  # **rest takes any other keyword
    assert result == {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "null"}]}}
    literal = document["paths"]["/v1/objects/Fragile/{name}/add_then_fail"]["post"]
    kind = literal["requestBody"]["content"]["application/json"]["schema"]["properties"]["kind"]
    assert kind == {"enum": ["user", "crash"]}


def test_the_documented_schemas_accept_what_the_server_answers(http, document):
    # A few answers of each fixed route, checked against the document by schemathesis itself.
    schema = schemathesis.openapi.from_dict(document)
    answers = [
        ("GET", "/v1/objects/{class}/{name}", "get", {"class": "Counter", "name": "doc"}),
        ("GET", "/healthz", "get", {}),
        ("GET", "/readyz", "get", {}),
        ("GET", "/v1/alarms", "get", {}),
        ("GET", "/v1/classes", "get", {}),
        ("GET", "/docs", "get", {}),
        ("GET", "/docs/{file}", "get", {"file": "swagger-ui.css"}),
        ("GET", "/docs/{file}", "get", {"file": "nothing.js"}),
        ("POST", "/v1/objects/OpenApiProbe/{name}/everything", "post", {"name": "doc"}),
        ("POST", "/v1/objects/Countr/{name}/increment", None, {"name": "doc"}),
    ]
    assert http.post("/v1/objects/Counter/doc/increment").status_code == 200
    assert http.post("/v1/objects/Alarmed/doc/every", json={"name": "e", "seconds": 60}).status_code == 200
    for method, path, verb, parameters in answers:
        body = {"count": 2, "ratio": None} if path.endswith("everything") else None
        response = http.request(method, path.format(**parameters), json=body)
        if verb is None:  # an unknown class: the error the document's error schema describes
            operation = schema["/v1/objects/Counter/{name}/increment"]["post"]
            assert response.status_code == 404 and response.json()["error"]["suggestions"][0] == "Counter"
            operation.validate_response(response, case=operation.Case(path_parameters=parameters))
            continue
        operation = schema[path][verb]
        case = operation.Case(path_parameters=parameters or None)
        operation.validate_response(response, case=case)


def test_a_plain_get_of_the_websocket_route_is_426_upgrade_required_as_documented(http, document):
    answers = document["paths"]["/v1/objects/{class}/{name}/ws"]["get"]["responses"]
    response = http.get("/v1/objects/Room/lobby/ws")
    assert response.status_code == 426 and str(response.status_code) in answers
    assert response.json()["error"]["code"] == "upgrade_required"
    assert response.headers["upgrade"] == "websocket"
    refused = http.get("/v1/objects/Counter/lobby/ws")  # a class without web_socket_message
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "websockets_not_supported"
