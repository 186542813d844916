"""JSON-able method signatures: checked when a class is defined, enforced per call.

Only types that survive a JSON round trip are allowed in @rpc signatures, so
that what a caller sends over HTTP is exactly what the method receives.
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any

from solo.objects.errors import InvalidArguments

_SCALARS = (int, float, str, bool, type(None))
# An `int` parameter takes what SQLite's INTEGER (and Postgres' BIGINT) holds: a larger one
# passed on to SQL would fail in the method, as a 500, long after the edge. Results and
# unannotated values are not bounded: JSON itself carries any integer.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def annotation_problem(annotation: Any) -> str | None:
    """Why `annotation` is not JSON-able, or None if it is."""
    if annotation is inspect.Parameter.empty or annotation is Any or annotation is object:
        return None
    if annotation is None or annotation in _SCALARS or annotation in (list, dict):
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return next((p for p in map(annotation_problem, args) if p), None)
    if origin is typing.Literal:
        if all(isinstance(a, _SCALARS) for a in args):
            return None
        return f"{annotation!r} has non-JSON literal values"
    if origin is list:
        return annotation_problem(args[0]) if args else None
    if origin is dict:
        if args and args[0] is not str:
            return f"{annotation!r}: JSON object keys are strings"
        return annotation_problem(args[1]) if args else None
    return f"{annotation!r} is not a JSON type (use int, float, str, bool, None, list, dict, Literal, unions)"


def matches(value: Any, annotation: Any) -> bool:
    """Whether a decoded JSON value fits the annotation."""
    if annotation is inspect.Parameter.empty or annotation is Any or annotation is object:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool) and INT_MIN <= value <= INT_MAX
    if annotation is float:  # an integer too, as JSON does not tell 1 from 1.0, if a float can hold it
        return isinstance(value, float) or (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) <= sys.float_info.max
        )
    if annotation is str:
        return isinstance(value, str)
    if annotation is list:
        return isinstance(value, list)
    if annotation is dict:
        return isinstance(value, dict)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin is list:
        return isinstance(value, list) and (not args or all(matches(v, args[0]) for v in value))
    if origin is dict:
        return isinstance(value, dict) and (not args or all(matches(v, args[1]) for v in value.values()))
    return False


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation).replace("typing.", "")


def _expected(annotation: Any) -> str:
    """The full type for an error message: "list[int]" or "Literal['a', 'b']", not "list" or "Literal"."""
    if typing.get_origin(annotation) is not None:
        expected = repr(annotation).replace("typing.", "")
    else:
        expected = _type_name(annotation)
    if _mentions_int(annotation):
        expected += f" (ints are from {INT_MIN} to {INT_MAX})"
    return expected


def _mentions_int(annotation: Any) -> bool:
    return annotation is int or any(_mentions_int(a) for a in typing.get_args(annotation))


def json_schema(annotation: Any) -> dict[str, Any]:
    """The JSON Schema of what `matches` accepts for an annotation that passed `annotation_problem`.

    For the OpenAPI document: parameters and results of @rpc methods. Unannotated means anything ({}).
    """
    if annotation is inspect.Parameter.empty or annotation is Any or annotation is object:
        return {}
    if annotation is None or annotation is type(None):
        return {"type": "null"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX}
    if annotation is float:
        return {"type": "number"}
    if annotation is str:
        return {"type": "string"}
    if annotation is list:
        return {"type": "array"}
    if annotation is dict:
        return {"type": "object"}
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [json_schema(a) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": json_schema(args[0])} if args else {"type": "array"}
    if origin is dict:
        return {"type": "object", "additionalProperties": json_schema(args[1])} if args else {"type": "object"}
    return {}


@dataclass(frozen=True)
class MethodSpec:
    """What a caller may send to one @rpc method."""

    name: str
    parameters: tuple[inspect.Parameter, ...]
    hints: dict[str, Any]
    accepts_any_keyword: bool
    doc: str | None

    @classmethod
    def of(cls, name: str, function: Any, hints: dict[str, Any]) -> MethodSpec:
        params = tuple(inspect.signature(function).parameters.values())[1:]  # drop self
        return cls(
            name=name,
            parameters=tuple(p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)),
            hints=hints,
            accepts_any_keyword=any(p.kind is p.VAR_KEYWORD for p in params),
            doc=inspect.getdoc(function),
        )

    def bind(self, arguments: Any) -> dict[str, Any]:
        """Check decoded JSON arguments against the signature; every problem is reported."""
        if not isinstance(arguments, dict):
            raise InvalidArguments("the request body must be a JSON object of keyword arguments")
        problems = []
        known = {p.name for p in self.parameters}
        if not self.accepts_any_keyword:
            problems += [f"unknown argument {k!r}" for k in arguments if k not in known]
        for p in self.parameters:
            if p.name not in arguments:
                if p.default is inspect.Parameter.empty:
                    problems.append(f"missing argument {p.name!r}")
                continue
            annotation = self.hints.get(p.name, inspect.Parameter.empty)
            if not matches(arguments[p.name], annotation):
                problems.append(f"argument {p.name!r} must be {_expected(annotation)}")
        if problems:
            raise InvalidArguments(f"{self.name}: " + "; ".join(problems))
        return arguments

    def signature(self) -> str:
        """The method as Python shows it, without self: ``increment(by: int = 1) -> int``."""
        parameters = [p.replace(annotation=self.hints.get(p.name, p.empty)) for p in self.parameters]
        if self.accepts_any_keyword:
            parameters.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
        returns = self.hints.get("return", inspect.Signature.empty)
        text = str(inspect.Signature(parameters, return_annotation=returns))
        return f"{self.name}{text}".replace("typing.", "").replace("NoneType", "None")

    def describe(self) -> dict[str, Any]:
        """A JSON description for the OpenAPI document: each parameter's and the result's JSON Schema."""
        return {
            "parameters": {
                p.name: {
                    "type": _type_name(self.hints.get(p.name, Any)),
                    "schema": json_schema(self.hints.get(p.name, inspect.Parameter.empty)),
                    "required": p.default is inspect.Parameter.empty,
                }
                for p in self.parameters
            },
            "accepts_any_keyword": self.accepts_any_keyword,
            "result": json_schema(self.hints.get("return", inspect.Parameter.empty)),
            "doc": self.doc,
        }
