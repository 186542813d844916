"""Write bench/RESULTS.md from the latest result of each scenario (bench/out/<scenario>.json).

    .venv/bin/python -m bench.report

Sections come in the order of SCENARIOS, then any other scenario result
found. The hand-written analysis between the ANALYSIS markers of the existing
RESULTS.md is kept as it is. So are the sections and goal rows of scenarios that
have no result in bench/out (not run on this machine since its results were
last written: bench/out is not kept in git), each with its own date, until a run
of that scenario replaces them. Everything else is generated.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from bench.common import OUT_DIR, ROOT, Column, markdown_table

SCENARIOS = [
    "baseline",
    "throughput",
    "auth",
    "observability",
    "latency",
    "breakdown",
    "hot",
    "cold",
    "activations",
    "drain",
    "import_memory",
    "durability",
    "failover",
    "alarms",
    "costs",
    "scale",
    "capacity",
    "sockets",
    "chaos",
    "postgres_outage",
    "partition",
]
RESULTS = ROOT / "bench" / "RESULTS.md"
ANALYSIS_START, ANALYSIS_END = "<!-- ANALYSIS: hand-written, kept by bench/report.py -->", "<!-- /ANALYSIS -->"


KEPT_NOTE = " (sections from earlier runs, kept until their scenario runs again, give their own dates)."


def load_results() -> list[dict[str, Any]]:
    found = {}
    for path in OUT_DIR.glob("*.json"):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "scenario" in data:  # older formats (http_load, durability) have none
            found[data["scenario"]] = data
    ordered = [found.pop(name) for name in SCENARIOS if name in found]
    return ordered + [found[name] for name in sorted(found)]


def kept_analysis() -> str:
    if not RESULTS.exists():
        return ""
    text = RESULTS.read_text()
    if ANALYSIS_START in text and ANALYSIS_END in text:
        return text.split(ANALYSIS_START, 1)[1].split(ANALYSIS_END, 1)[0].strip()
    return ""


def kept_scenarios(results: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Of the existing RESULTS.md, the sections and goal rows of scenarios with no result here:
    ({scenario: section text}, {scenario: goal table rows})."""
    if not RESULTS.exists():
        return {}, {}
    fresh = {r["scenario"] for r in results}
    text = RESULTS.read_text()
    if ANALYSIS_END in text:
        text = text.split(ANALYSIS_END, 1)[1]
    sections: dict[str, str] = {}
    for part in text.split("\n## ")[1:]:
        found = re.search(r"^- Scenario: `bench/(\w+)\.py`", part, re.MULTILINE)
        # A section without that line was written by hand (from runs by hand): kept by its heading.
        name = found.group(1) if found else part.splitlines()[0]
        if name not in fresh:
            sections[name] = sections.get(name, "") + "## " + part.rstrip() + "\n"
    rows: dict[str, list[str]] = {}
    goals = RESULTS.read_text().split("## Goals", 1)[-1].split(ANALYSIS_START, 1)[0]
    for line in goals.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("scenario", "---") and cells[0] not in fresh:
            rows.setdefault(cells[0], []).append(line)
    return sections, rows


def columns_of(result: dict[str, Any]) -> list[Column]:
    if result.get("columns"):
        return [tuple(c) for c in result["columns"]]
    rows = result.get("rows") or []
    keys = [k for k, v in rows[0].items() if not isinstance(v, (list, dict))] if rows else []
    return [(k, k, "") for k in keys]


def describe_machine(result: dict[str, Any]) -> str:
    m = result.get("machine", {})
    return f"{m.get('cpus')} CPUs ({m.get('cpu_model')}), {m.get('memory_gib')} GiB, {m.get('os')}"


def describe_versions(result: dict[str, Any]) -> str:
    return ", ".join(f"{name} {version}" for name, version in result.get("versions", {}).items())


def figure(value: float) -> str:
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def goals_table(results: list[dict[str, Any]], kept_rows: dict[str, list[str]]) -> str:
    rows = []
    for result in results:
        for g in result.get("goals", []):
            rows.append(
                {
                    "scenario": result["scenario"],
                    "goal": g["goal"],
                    "target": g["target"],
                    "measured": f"{figure(g['measured'])} {g['unit']}",
                    "of_target": g.get("of_target"),
                    "ratio": g.get("ratio"),
                    "met": "**met**" if g["met"] else "**not met**",
                }
            )
    columns: list[Column] = [
        ("scenario", "scenario", ""),
        ("goal", "goal", ""),
        ("target", "target", ""),
        ("measured", "measured", ""),
        ("of_target", "measured / target", ".2f"),
        ("ratio", "ratio to baseline", ".2f"),
        ("met", "", ""),
    ]
    table = markdown_table(columns, rows)
    kept = [line for lines in kept_rows.values() for line in lines]
    return "\n".join([table.rstrip("\n"), *kept]) if kept else table


def section(result: dict[str, Any]) -> str:
    name = result["scenario"]
    lines = [f"## {result.get('title', name)}", ""]
    lines.append(f"- Scenario: `bench/{name}.py`. Date: {result.get('date')}. Command: `{result.get('command')}`")
    lines.append(f"- Code: solo {result.get('versions', {}).get('solo', '?')}")
    load = result.get("machine", {}).get("load_average_1m")
    if load is not None:
        lines.append(f"- Load average when it started: {load}")
    lines.append("")
    columns = columns_of(result)
    if columns:
        lines += [markdown_table(columns, result.get("rows") or []), ""]
    for note in result.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"


def render(results: list[dict[str, Any]], analysis: str) -> str:
    kept_sections, kept_rows = kept_scenarios(results)
    first = results[0]
    dates = sorted(r.get("date", "") for r in results)
    parts = [
        "# Benchmark results",
        "",
        "Generated by `bench/report.py` from `bench/out/*.json`, the latest run of each scenario. "
        "`make bench` (= `.venv/bin/python -m bench.all`) runs every scenario and then this report; "
        "`make chaos` runs the ten-minute chaos test. Each scenario starts the real system (uvicorn API, "
        "Dramatiq worker processes, Redis, Postgres) and drives it from a separate load process "
        "(`bench/loadgen.py`). Absolute figures on a shared two-core machine are noisy: rerun before comparing.",
        "",
        f"- Runs: {dates[0]} to {dates[-1]}{KEPT_NOTE if kept_sections else '.'}",
        f"- Machine: {describe_machine(first)}.",
        f"- Versions: {describe_versions(first)}.",
        "",
        "## Goals",
        "",
        goals_table(results, kept_rows),
        "",
        ANALYSIS_START,
        analysis,
        ANALYSIS_END,
        "",
    ]
    generated = {r["scenario"]: section(r) for r in results}
    order = [*SCENARIOS, *sorted(generated), *kept_sections]  # SCENARIOS' order, then the others
    parts += [
        ({**kept_sections, **generated})[name]
        for name in dict.fromkeys(order)
        if name in {**kept_sections, **generated}
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    results = load_results()
    if not results:
        print("no results in bench/out; run a scenario first", file=sys.stderr)
        return 1
    RESULTS.write_text(render(results, kept_analysis()))
    print(f"wrote {RESULTS.relative_to(ROOT)} ({', '.join(r['scenario'] for r in results)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
