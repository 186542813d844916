"""The whole HTTP API, fuzzed from its own OpenAPI document (schemathesis) against real processes.

An API process with SOLO_AUTH=keys and a worker serve the examples (what `make run` serves)
on the real Redis and Postgres. Every operation of /openapi.json gets its coverage cases (the
edges of each schema, requests the document forbids, one without the key) and then random
ones, sent with an operator's key. Bad input must never get a 5xx, and every answer must be
what the document says: status, content type and body.

Seeded, so a run is the same run again (SOLO_FUZZ_SEED picks another seed). SOLO_FUZZ_EXAMPLES
sets how many random examples each operation gets: a few in `make test`, many in `make fuzz`.
Every route of solo's own is fuzzed in both; of the examples' methods (most of the operations,
and most of the time), `make test` fuzzes those of a few classes chosen for the variety of
their arguments (SOLO_FUZZ_CLASSES), `make fuzz` all of them (SOLO_FUZZ_CLASSES=all).
A failure names its operation and a curl command that reproduces it; each one fixed has a
regression test of its own (tests/contract/test_gateway_errors.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from solo.objects.state.keys import KeyStore
from tests.e2e.conftest import module_cluster

SEED_ENV, DEFAULT_SEED = "SOLO_FUZZ_SEED", 20260401
EXAMPLES_ENV = "SOLO_FUZZ_EXAMPLES"
DEFAULT_EXAMPLES = 10  # random examples per operation: `make test`'s share of the fuzz stays near a minute
CLASSES_ENV = "SOLO_FUZZ_CLASSES"
# Numbers and defaults (Counter), SQL passed through from a caller (TableShard), nested models and
# enums (Workflow), a class that takes sockets (Conversation).
DEFAULT_CLASSES = "Counter,TableShard,Workflow,Conversation"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",  # a request the document forbids is refused with a 4xx
)


@dataclass
class FuzzTarget:
    url: str
    token: str  # an operator's key: every route is open to it
    work_dir: Path


@pytest.fixture(scope="module")
def fuzzed_solo(real_redis_url, postgres_url, tmp_path_factory) -> Iterator[FuzzTarget]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with module_cluster(real_redis_url, postgres_url, tmp, auth="keys", SOLO_OBJECTS="solo.examples") as (
        cluster,
        engine,
    ):
        cluster.start_worker()
        url = cluster.start_api()
        key = KeyStore(engine).create("default", "operator", label="fuzz")
        yield FuzzTarget(url, key.token, tmp)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def methods_left_out(classes: str) -> list[str]:
    """schemathesis' option leaving out the methods of every class but `classes` ("all": none left out)."""
    if classes.strip() == "all":
        return []
    kept = "|".join(re.escape(c.strip()) for c in classes.split(",") if c.strip())
    # A method's path names its class; solo's own routes have `{class}` there instead.
    return ["--exclude-path-regex", rf"^/v1/objects/(?!(?:{kept})/)[A-Za-z_][A-Za-z0-9_]*/\{{name\}}/"]


def schemathesis_run(target: FuzzTarget, seed: int, examples: int, classes: str, report: Path) -> list[str]:
    """The `schemathesis run` command line of the fuzz. Hypothesis' deadline is off under it (it
    sets none), so a slow answer on a loaded machine is not taken for a flaky failure."""
    return [
        *(sys.executable, "-m", "schemathesis.cli", "run", f"{target.url}/openapi.json"),
        *("--header", f"Authorization: Bearer {target.token}"),
        *("--checks", ",".join(CHECKS)),
        # The document has no examples, and no links for the stateful phase.
        *("--phases", "coverage,fuzzing"),
        *("--max-examples", str(examples)),
        *methods_left_out(classes),
        *("--seed", str(seed)),
        # Nothing replayed from an earlier run's example database: the seed decides it all.
        *("--generation-database", "none"),
        *("--report", "json", "--report-json-path", str(report)),
        # Its warnings say how often methods refused what their annotations allow (a UserError): by design.
        *("--warnings", "off", "--output-sanitize", "true", "--no-color"),
    ]


@pytest.mark.timeout(900)  # about 5 minutes on a loaded two-core machine: over the suite's default limit
def test_no_request_gets_a_server_error_and_every_answer_is_as_documented(fuzzed_solo):
    seed = int(os.environ.get(SEED_ENV, DEFAULT_SEED))
    examples = int(os.environ.get(EXAMPLES_ENV, DEFAULT_EXAMPLES))
    classes = os.environ.get(CLASSES_ENV, DEFAULT_CLASSES)
    report = fuzzed_solo.work_dir / "schemathesis.json"
    command = schemathesis_run(fuzzed_solo, seed, examples, classes, report)
    # Its caches and reports stay out of the checkout, in the test's own folder.
    with subprocess.Popen(
        command, cwd=fuzzed_solo.work_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as run:
        assert run.stdout is not None
        for line in run.stdout:
            print(line, end="")  # pytest shows it with a failure; under -s (make fuzz) it is the progress
    summary = json.loads(report.read_text()) if report.exists() else {}
    cases = summary.get("test_cases", {})
    print(
        f"fuzz: {summary.get('operations', {}).get('tested')} operations, {cases.get('generated')} test cases,"
        f" {summary.get('running_time', 0):.0f} s, seed {seed}, {examples} random examples per operation,"
        f" methods of {classes}"
    )
    assert run.returncode == 0, "schemathesis failed: its output (captured stdout) has a curl command for each failure"
    assert summary["complete"] and cases["errored"] == 0


def test_without_a_key_every_operation_but_the_open_ones_is_401_as_documented(fuzzed_solo, http):
    # The document declares the Bearer key for every operation but those that say `security: []`.
    document = http.get(f"{fuzzed_solo.url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)  # from_url would leave the document's own path out
    classes = document["paths"]["/v1/objects/{class}/{name}"]["parameters"][0]["schema"]["enum"]
    parameters = {
        "class": classes[0],
        "name": f"fuzz-{uuid.uuid4().hex[:8]}",
        "call_id": "none",
        "page": "chat.html",
        "file": "swagger-ui.css",
        "alarm": "_alarm",
    }
    open_operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        case = operation.Case(path_parameters={n: v for n, v in parameters.items() if n in names} or None)
        response = case.call(base_url=fuzzed_solo.url, session=http)
        case.validate_response(
            response, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
        )
        if operation.definition.raw.get("security") == []:
            open_operations.append(operation.label)
            assert response.status_code == 200, operation.label
            continue
        assert response.status_code == 401, (operation.label, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"
        assert response.headers["www-authenticate"][0].startswith("Bearer")  # schemathesis: lowercase, lists
    assert sorted(open_operations) == [
        "GET /docs",
        "GET /docs/{file}",
        "GET /healthz",
        "GET /openapi.json",
        "GET /pages/{page}",
        "GET /readyz",
    ]
