"""`solo keys create | ls | revoke`, and the clients sending a key (SOLO_API_KEY, api_key=).

The commands run as `solo` does (cli.main.main), on a SQLite shared database that nobody has
migrated yet: the command migrates it itself, as `solo dev` does.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from solo.api.client import AsyncClient, Client
from solo.cli.main import _client, build_parser, main
from solo.objects.state.keys import KeyStore, parse_token
from solo.objects.state.schema import make_engine

TOKEN_SHAPE = re.compile(r"solo_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def database(tmp_path, monkeypatch) -> str:
    for name in ("SOLO_AUTH", "SOLO_API_KEY", "SOLO_OBJECTS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'var' / 'solo.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def solo(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_prints_the_key_once_alone_on_the_last_line_of_stdout(database, capsys):
    code, out, err = solo(
        capsys, "keys", "create", "--tenant", "acme", "--scope", "call", "--rate", "100/s", "--label", "billing service"
    )

    assert code == 0, err
    token = out.splitlines()[-1]
    assert TOKEN_SHAPE.fullmatch(token), out
    assert (out + err).count(token) == 1
    _, secret = parse_token(token)
    assert (out + err).count(secret) == 1
    assert "migrating the shared database" in err  # nobody had migrated it: the command did
    engine = make_engine(database)
    try:
        assert KeyStore(engine).verify(token).tenant == "acme"
    finally:
        engine.dispose()


def test_ls_shows_every_field_but_the_key_and_revoke_marks_it(database, capsys):
    _, out, _ = solo(capsys, "keys", "create", "--tenant", "acme", "--scope", "admin", "--rate", "6/minute")
    token = out.splitlines()[-1]
    key_id, secret = parse_token(token)
    solo(capsys, "keys", "create", "--tenant", "globex", "--scope", "operator", "--label", "ops team")

    code, listing, _ = solo(capsys, "keys", "ls")
    assert code == 0
    header, *rows = listing.splitlines()
    assert header.split() == ["id", "tenant", "scope", "rate", "label", "created", "revoked"]
    row = next(r for r in rows if r.startswith(key_id))
    assert row.split()[1:4] == ["acme", "admin", "6/m"]
    assert row.split()[-1] == "-"  # not revoked
    assert any("ops team" in r for r in rows)
    assert secret not in listing

    code, out, _ = solo(capsys, "keys", "revoke", key_id)
    assert code == 0 and f"revoked API key {key_id}" in out
    code, out, _ = solo(capsys, "keys", "revoke", key_id)
    assert code == 0 and "already revoked" in out
    _, listing, _ = solo(capsys, "keys", "ls", "--json")
    revoked = next(k for k in json.loads(listing) if k["id"] == key_id)
    assert revoked["revoked"] is not None and revoked["rate"] == "6/m"
    assert secret not in listing


def test_revoking_an_unknown_key_and_creating_a_malformed_one_fail_clearly(database, capsys):
    code, _, err = solo(capsys, "keys", "revoke", "nosuchkey")
    assert code == 1 and "no API key 'nosuchkey'" in err
    code, out, err = solo(capsys, "keys", "create", "--tenant", "acme", "--scope", "call", "--rate", "lots")
    assert code == 2 and "rate 'lots'" in err and out == ""
    code, out, err = solo(capsys, "keys", "create", "--tenant", "acme corp", "--scope", "call")
    assert code == 2 and "tenant" in err and out == ""


def test_the_cli_sends_solo_api_key_as_the_bearer_token(monkeypatch):
    args = build_parser().parse_args(["call", "Counter/a", "increment"])
    monkeypatch.delenv("SOLO_API_KEY", raising=False)
    with _client(args) as client:
        assert "authorization" not in client.http.headers
    monkeypatch.setenv("SOLO_API_KEY", "solo_0123456789abcdef_" + "s" * 43)
    with _client(args) as client:
        assert client.http.headers["authorization"] == "Bearer solo_0123456789abcdef_" + "s" * 43


def test_the_clients_send_api_key_only_when_given():
    with Client("http://127.0.0.1:1") as client:
        assert "authorization" not in client.http.headers
    with Client("http://127.0.0.1:1", api_key="k") as client:
        assert client.http.headers["authorization"] == "Bearer k"
    client = AsyncClient("http://127.0.0.1:1", api_key="k")
    assert client.http.headers["authorization"] == "Bearer k"
    asyncio.run(client.aclose())


def test_auth_off_on_an_address_others_reach_gets_a_warning(capsys):
    from solo.cli.main import warn_if_open
    from solo.objects.settings import Settings

    warn_if_open(Settings(auth="off"), "127.0.0.1")
    warn_if_open(Settings(auth="keys"), "0.0.0.0")
    assert capsys.readouterr().err == ""
    warn_if_open(Settings(auth="off"), "0.0.0.0")
    assert "SOLO_AUTH=off and listening on 0.0.0.0" in capsys.readouterr().err
