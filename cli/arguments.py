"""`solo call`'s arguments: `key=value` pairs typed by the method's signature, or one JSON object.

The signature comes from the server's own description of the method (the request body
schema of its operation in GET /openapi.json), so `title=42` stays the string "42" where the
method takes a `str` and becomes the number 42 where it takes an `int`. Without a schema (an
unannotated parameter, a server that does not describe the method) a value is JSON when it
parses as JSON, else a string.

The schemas are the few shapes objects/signatures.py `json_schema` writes (type, anyOf, enum,
array items, object additionalProperties), so a small matcher is enough here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "array": (list,),
    "object": (dict,),
}


class ArgumentError(ValueError):
    """An argument the command line cannot turn into a call's keyword arguments."""


def accepts(schema: Mapping[str, Any], value: Any) -> bool:
    """Whether `value` (decoded JSON) fits `schema`; an empty schema accepts anything."""
    if "anyOf" in schema:
        return any(accepts(s, value) for s in schema["anyOf"])
    if "enum" in schema:
        return any(value == e and type(value) is type(e) for e in schema["enum"])
    kind = schema.get("type")
    if kind is None:
        return True
    kinds = kind if isinstance(kind, list) else [kind]
    if not any(_is(k, value) for k in kinds):
        return False
    if isinstance(value, int) and not isinstance(value, bool):
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            return False
    if isinstance(value, list) and "items" in schema:
        return all(accepts(schema["items"], v) for v in value)
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), Mapping):
        return all(accepts(schema["additionalProperties"], v) for v in value.values())
    return True


def _is(kind: str, value: Any) -> bool:
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, _JSON_TYPES.get(kind, ()))


def typed_value(raw: str, schema: Mapping[str, Any] | None) -> Any:
    """The value a parameter of this schema gets from `raw`: its JSON when that fits, else the string if
    strings fit, else its JSON (or the string) for the server to judge."""
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    if schema is None or accepts(schema, decoded) or not accepts(schema, raw):
        return decoded
    return raw


def split_kv(pairs: list[str]) -> list[tuple[str, str]]:
    """key=value arguments as (key, raw value) pairs; checked before anything is asked of the server."""
    split = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ArgumentError(f"argument {pair!r} must look like key=value")
        split.append((key, raw))
    return split


def parse_kv(pairs: list[str], parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """key=value arguments, each typed by `parameters` (name -> JSON schema) when given."""
    return {key: typed_value(raw, (parameters or {}).get(key)) for key, raw in split_kv(pairs)}


def parse_json_args(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"--json-args is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ArgumentError("--json-args must be a JSON object of keyword arguments")
    return value


def method_parameters(http: httpx.Client, class_name: str, method: str) -> dict[str, Any] | None:
    """name -> JSON schema of the method's parameters, from the server's OpenAPI document; None if it has
    no such operation (an unknown class or method: the call itself then says which)."""
    response = http.get("/openapi.json")
    if response.status_code != 200:
        return None
    try:
        paths = response.json().get("paths", {})
        operation = paths[f"/v1/objects/{class_name}/{{name}}/{method}"]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        return dict(schema.get("properties", {}))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
