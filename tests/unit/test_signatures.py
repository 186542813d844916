"""MethodSpec.bind: what a caller's decoded JSON body must look like."""

import typing
from typing import Any, Literal, Optional

import pytest

from solo.objects.errors import InvalidArguments
from solo.objects.signatures import MethodSpec, annotation_problem, matches


def spec_of(function) -> MethodSpec:
    return MethodSpec.of(function.__name__, function, typing.get_type_hints(function))


def transfer(self, source: str, amount: int, note: str = "") -> dict:
    return {}


def scalars(self, count: int, ratio: float, flag: bool, label: str, nothing: None = None) -> None:
    return None


def containers(
    self,
    numbers: list[int] = None,  # noqa: RUF013
    scores: dict[str, int] = None,  # noqa: RUF013
    maybe: Optional[int] = 0,  # noqa: UP045
    either: int | str = 0,
    mode: Literal["fast", "slow", 3] = "fast",
    anything: Any = None,
    untyped=None,
    nested: list[dict[str, list[float]]] = None,  # noqa: RUF013
) -> None:
    return None


def open_ended(self, required: int, **extra: Any) -> None:
    return None


def problems_of(spec: MethodSpec, arguments: Any) -> str:
    with pytest.raises(InvalidArguments) as caught:
        spec.bind(arguments)
    assert caught.value.code == "invalid_arguments"
    return str(caught.value)


def test_a_well_formed_body_binds_to_itself():
    spec = spec_of(transfer)
    assert spec.bind({"source": "a", "amount": 3}) == {"source": "a", "amount": 3}
    assert spec.bind({"source": "a", "amount": 3, "note": "x"}) == {"source": "a", "amount": 3, "note": "x"}


def test_an_unknown_argument_is_rejected_by_name():
    message = problems_of(spec_of(transfer), {"source": "a", "amount": 1, "colour": "red"})
    assert "unknown argument 'colour'" in message
    assert message.startswith("transfer: ")


def test_a_missing_argument_is_rejected_by_name_and_defaults_are_optional():
    message = problems_of(spec_of(transfer), {"source": "a"})
    assert "missing argument 'amount'" in message
    assert "note" not in message


def test_a_body_that_is_not_a_json_object_is_rejected():
    spec = spec_of(transfer)
    for body in ([1, 2], "source=a", 3, None, True):
        assert "must be a JSON object" in problems_of(spec, body)


def test_bool_is_not_an_int_and_int_is_not_a_bool():
    spec = spec_of(scalars)
    ok = {"count": 1, "ratio": 1.5, "flag": True, "label": "x"}
    assert spec.bind(ok) == ok
    assert "argument 'count' must be int" in problems_of(spec, {**ok, "count": True})
    assert "argument 'flag' must be bool" in problems_of(spec, {**ok, "flag": 1})
    assert "argument 'count' must be int" in problems_of(spec, {**ok, "count": 1.0})
    assert "argument 'count' must be int" in problems_of(spec, {**ok, "count": "1"})


def test_an_int_is_accepted_for_a_float_but_a_bool_is_not():
    spec = spec_of(scalars)
    ok = {"count": 1, "ratio": 2, "flag": False, "label": "x"}
    assert spec.bind(ok)["ratio"] == 2
    assert "argument 'ratio' must be float" in problems_of(spec, {**ok, "ratio": False})
    assert "argument 'ratio' must be float" in problems_of(spec, {**ok, "ratio": "2.0"})


def test_none_is_only_accepted_where_the_annotation_allows_it():
    spec = spec_of(scalars)
    ok = {"count": 1, "ratio": 2, "flag": False, "label": "x"}
    assert spec.bind({**ok, "nothing": None})["nothing"] is None
    assert "argument 'nothing' must be NoneType" in problems_of(spec, {**ok, "nothing": 0})
    assert "argument 'label' must be str" in problems_of(spec, {**ok, "label": None})


def test_typed_lists_check_every_element():
    spec = spec_of(containers)
    assert spec.bind({"numbers": [1, 2, 3]})["numbers"] == [1, 2, 3]
    assert spec.bind({"numbers": []})["numbers"] == []
    assert "argument 'numbers' must be list[int]" in problems_of(spec, {"numbers": [1, "2"]})
    assert "argument 'numbers' must be" in problems_of(spec, {"numbers": [1, True]})
    assert "argument 'numbers' must be" in problems_of(spec, {"numbers": {"a": 1}})


def test_typed_dicts_check_every_value():
    spec = spec_of(containers)
    assert spec.bind({"scores": {"a": 1, "b": 2}})["scores"] == {"a": 1, "b": 2}
    assert "argument 'scores' must be dict[str, int]" in problems_of(spec, {"scores": {"a": 1, "b": 2.5}})
    assert "argument 'scores' must be" in problems_of(spec, {"scores": [["a", 1]]})


def test_optional_and_union_arguments_accept_any_member():
    spec = spec_of(containers)
    assert spec.bind({"maybe": None})["maybe"] is None
    assert spec.bind({"maybe": 4})["maybe"] == 4
    assert "argument 'maybe' must be Optional[int]" in problems_of(spec, {"maybe": "4"})
    assert spec.bind({"either": "x"})["either"] == "x"
    assert spec.bind({"either": 5})["either"] == 5
    assert "argument 'either' must be int | str" in problems_of(spec, {"either": None})


def test_literal_arguments_must_equal_a_listed_value_of_the_same_type():
    spec = spec_of(containers)
    assert spec.bind({"mode": "slow"})["mode"] == "slow"
    assert spec.bind({"mode": 3})["mode"] == 3
    message = problems_of(spec, {"mode": "medium"})
    assert "argument 'mode' must be Literal['fast', 'slow', 3]" in message
    assert "argument 'mode' must be" in problems_of(spec, {"mode": 3.0})


def test_any_and_unannotated_parameters_accept_every_json_value():
    spec = spec_of(containers)
    for value in (None, 1, "x", [1], {"a": [None]}):
        assert spec.bind({"anything": value, "untyped": value}) == {"anything": value, "untyped": value}


def test_nested_containers_are_checked_all_the_way_down():
    spec = spec_of(containers)
    assert spec.bind({"nested": [{"a": [1, 2.5]}, {}]})
    assert "argument 'nested' must be" in problems_of(spec, {"nested": [{"a": [1, "x"]}]})


def test_every_problem_is_reported_together():
    message = problems_of(spec_of(transfer), {"amount": "ten", "colour": "red", "size": 3})
    for problem in (
        "unknown argument 'colour'",
        "unknown argument 'size'",
        "missing argument 'source'",
        "argument 'amount' must be int",
    ):
        assert problem in message, message


def test_var_keyword_parameters_accept_unknown_keys_but_still_check_named_ones():
    spec = spec_of(open_ended)
    assert spec.accepts_any_keyword
    assert spec.bind({"required": 1, "whatever": [1], "other": None}) == {"required": 1, "whatever": [1], "other": None}
    message = problems_of(spec, {"required": "x", "whatever": 1})
    assert "argument 'required' must be int" in message
    assert "unknown argument" not in message
    assert "missing argument 'required'" in problems_of(spec, {"whatever": 1})


def test_annotation_problem_names_non_json_types():
    assert annotation_problem(int) is None
    assert annotation_problem(dict[str, list[int | None]]) is None
    assert "is not a JSON type" in annotation_problem(set[int])
    assert "is not a JSON type" in annotation_problem(bytes)
    assert "JSON object keys are strings" in annotation_problem(dict[int, int])
    assert "is not a JSON type" in annotation_problem(list[set[int]])
    assert "is not a JSON type" in annotation_problem(Optional[bytes])  # noqa: UP045


def test_matches_agrees_with_json_decoding():
    assert matches(1, float) and not matches(True, float)
    assert matches(None, None) and matches(None, type(None)) and not matches(0, None)
    assert matches(True, Literal[True]) and not matches(1, Literal[True])
    assert matches(1, Literal[1]) and not matches(True, Literal[1])
    assert not matches({1}, set[int])
