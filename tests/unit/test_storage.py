"""self.storage: the key-value API on the object's own SQLite database."""

import sqlite3

import pytest

from solo.objects.storage import KV_TABLE_DDL, Storage


@pytest.fixture(params=["memory", "file"])
def connection(request, tmp_path):
    target = ":memory:" if request.param == "memory" else str(tmp_path / "kv.sqlite")
    conn = sqlite3.connect(target, isolation_level=None)  # autocommit, as objects' connections are
    conn.execute("PRAGMA synchronous=OFF")  # durability is not under test here; speed is welcome
    conn.execute(KV_TABLE_DDL)
    yield conn
    conn.close()


@pytest.fixture
def storage(connection) -> Storage:
    return Storage(connection)


@pytest.fixture
def filled(storage) -> Storage:
    storage.put_many({"a": 1, "b": 2, "ba": 3, "bb": 4, "bc": 5, "c": 6, "ca": 7})
    return storage


def test_get_returns_the_default_for_a_missing_key(storage):
    assert storage.get("missing") is None
    assert storage.get("missing", 42) == 42
    assert storage.get("missing", default=[]) == []


def test_put_then_get_round_trips_json_values(storage):
    values = {
        "int": 3,
        "float": 2.5,
        "str": "héllo",
        "bool": False,
        "list": [1, "x", None],
        "dict": {"nested": {"deep": [True]}},
        "empty": "",
    }
    for key, value in values.items():
        storage.put(key, value)
    for key, value in values.items():
        assert storage.get(key) == value
        assert type(storage.get(key)) is type(value)


def test_a_stored_null_is_returned_as_none_not_as_the_default(storage):
    storage.put("nothing", None)
    assert storage.get("nothing", "default") is None
    assert storage.list() == {"nothing": None}


def test_put_replaces_an_existing_value(storage):
    storage.put("k", 1)
    storage.put("k", {"v": 2})
    assert storage.get("k") == {"v": 2}
    assert storage.list() == {"k": {"v": 2}}


def test_get_many_returns_found_keys_in_the_order_asked_and_skips_missing_ones(storage):
    storage.put_many({"a": 1, "b": 2, "c": 3})
    result = storage.get_many(["c", "missing", "a"])
    assert list(result.items()) == [("c", 3), ("a", 1)]
    assert storage.get_many([]) == {}


def test_get_many_works_beyond_the_sqlite_variable_limit(connection, storage):
    entries = {f"k{i:05d}": i for i in range(1300)}
    connection.execute("BEGIN")  # one transaction, as in a call
    storage.put_many(entries)
    connection.execute("COMMIT")
    keys = list(reversed(entries))
    result = storage.get_many(keys)
    assert list(result) == keys
    assert result["k01299"] == 1299


def test_put_many_writes_every_entry(storage):
    storage.put_many({"x": 1, "y": [2], "z": {"three": 3}})
    assert storage.list() == {"x": 1, "y": [2], "z": {"three": 3}}


def test_delete_reports_whether_the_key_existed(storage):
    storage.put("k", 1)
    assert storage.delete("k") is True
    assert storage.delete("k") is False
    assert storage.get("k") is None


def test_delete_all_removes_every_key(filled):
    filled.delete_all()
    assert filled.list() == {}
    assert filled.get("a") is None


def test_list_returns_every_entry_in_key_order(filled):
    assert list(filled.list().items()) == [("a", 1), ("b", 2), ("ba", 3), ("bb", 4), ("bc", 5), ("c", 6), ("ca", 7)]


def test_list_with_a_prefix_returns_only_keys_starting_with_it(filled):
    assert list(filled.list(prefix="b")) == ["b", "ba", "bb", "bc"]
    assert list(filled.list(prefix="bb")) == ["bb"]
    assert filled.list(prefix="zz") == {}


def test_list_prefix_is_literal_not_a_pattern(storage):
    storage.put_many({"a%b": 1, "a_b": 2, "axb": 3, "a%": 4})
    assert list(storage.list(prefix="a%")) == ["a%", "a%b"]
    assert list(storage.list(prefix="a_")) == ["a_b"]


def test_list_start_is_inclusive_and_end_is_exclusive(filled):
    assert list(filled.list(start="b", end="bc")) == ["b", "ba", "bb"]
    assert list(filled.list(start="ba")) == ["ba", "bb", "bc", "c", "ca"]
    assert list(filled.list(end="b")) == ["a"]
    assert filled.list(start="c", end="c") == {}


def test_list_limit_counts_from_the_start_of_the_order(filled):
    assert list(filled.list(limit=2)) == ["a", "b"]
    assert filled.list(limit=0) == {}
    assert len(filled.list(limit=100)) == 7
    with pytest.raises(ValueError):
        filled.list(limit=-1)


def test_list_reverse_orders_descending_and_limit_takes_the_last_keys(filled):
    assert list(filled.list(reverse=True)) == ["ca", "c", "bc", "bb", "ba", "b", "a"]
    assert list(filled.list(reverse=True, limit=2)) == ["ca", "c"]


def test_list_options_combine(filled):
    assert list(filled.list(prefix="b", start="ba", end="bc", reverse=True)) == ["bb", "ba"]
    assert list(filled.list(prefix="b", limit=2, reverse=True)) == ["bc", "bb"]
    assert list(filled.list(prefix="b", start="a", end="z", limit=3)) == ["b", "ba", "bb"]


def test_list_orders_by_code_point_like_python(storage):
    keys = ["b", "B", "é", "e", "a\u00ff", "a\u0100", "10", "9", "\U0001f600", "\uffff"]
    storage.put_many({k: k for k in keys})
    assert list(storage.list()) == sorted(keys)
    assert list(storage.list(prefix="a")) == sorted(k for k in keys if k.startswith("a"))


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", float("nan"), float("inf"), {"nested": object()}])
def test_a_non_json_value_raises_type_error_and_stores_nothing(storage, value):
    with pytest.raises(TypeError):
        storage.put("k", value)
    with pytest.raises(TypeError):
        storage.put_many({"ok": 1, "bad": value})
    assert storage.list() == {}


def test_a_key_that_is_not_a_string_raises_type_error(storage):
    with pytest.raises(TypeError):
        storage.put(1, "one")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        storage.put_many({("a",): 1})  # type: ignore[dict-item]
    assert storage.list() == {}


def test_writes_follow_the_connection_transaction(connection, storage):
    storage.put("kept", 1)
    connection.execute("BEGIN")
    storage.put("dropped", 2)
    storage.delete("kept")
    connection.execute("ROLLBACK")
    assert storage.list() == {"kept": 1}
