"""Reliability results (tests): what each failure scenario measured, for docs/reliability.md.

A test drives a scenario, computes the figures from what the lake, the CLI or the page
really holds, records one row, and then asserts on the same figures::

    from reliability import PipelineScenario, record

    record(
        PipelineScenario(
            name="hostile input corpus",
            events_sent=len(records),
            events_in_silver=len(silver),
            ...,
            result="pass" if lost == 0 and double_counted == 0 else "fail",
        )
    )

Recording before asserting means a failing scenario shows up as ``fail`` instead of
keeping its last passing row. Two kinds of row:

- ``PipelineScenario``: events through the stream job (crash/restart, outages, bad input);
- ``DashboardDegradation``: a failure injected under the dashboard and what the pages showed.

At the end of a session that recorded at least one row and collected without errors,
``tests/conftest.py`` calls ``publish``: the rows are merged by ``name`` into
``build/reliability/reliability.json`` (a partial run replaces only its own rows; the first
run starts from the committed ``docs/reliability.json``, so the table stays whole) and
``build/reliability/reliability.md`` is rendered again from the whole JSON. ``make docs``
copies both to ``docs/`` once a session that wrote them has passed. Never type a figure in
by hand: every number must come from the scenario's real output.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import BUILD, PROJECT_ROOT

from bench.long_runs import sections, with_sections

RESULTS_DIR = BUILD / "reliability"
RESULTS_JSON = RESULTS_DIR / "reliability.json"
RESULTS_MD = RESULTS_DIR / "reliability.md"
# The tracked copy `make docs` refreshes: where the build copy starts from when there is none.
DOCS_JSON = PROJECT_ROOT / "docs" / "reliability.json"
# Its markdown: the long-run sections (`make soak`, the many-viewers bench) come from there,
# as bench.long_runs wrote them, since no test measures them.
DOCS_MD = PROJECT_ROOT / "docs" / "reliability.md"
RESULTS = ("pass", "fail")
_KINDS = ("pipeline", "dashboard")


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass(frozen=True)
class PipelineScenario:
    """Events through the stream job under one kind of trouble."""

    name: str  # the row's key: unique, stable across runs
    events_sent: int  # records put on the stream (or in the batch), valid or not
    events_in_silver: int
    duplicates_dropped: int
    quarantined: int  # records quarantined (each once, whatever its number of reasons)
    quarantined_by_reason: dict[str, int]  # reason code -> records carrying it
    kills_survived: int
    lost_events: int  # events that should be in silver (or gold) and are not
    double_counted_events: int  # events counted more than once in silver or gold
    result: str  # "pass" | "fail"
    notes: str = ""
    measured: str = field(default_factory=_today)

    kind = "pipeline"

    def __post_init__(self) -> None:
        _check_common(self)
        counts = (
            self.events_sent,
            self.events_in_silver,
            self.duplicates_dropped,
            self.quarantined,
            self.kills_survived,
            self.lost_events,
            self.double_counted_events,
            *self.quarantined_by_reason.values(),
        )
        if any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in counts):
            raise ValueError(f"{self.name}: every count must be a whole number >= 0")


@dataclass(frozen=True)
class DashboardDegradation:
    """A failure injected under the dashboard, and what its pages showed meanwhile."""

    name: str  # the row's key: unique, stable across runs
    cause: str  # what was injected, in a few words
    pages: tuple[str, ...]
    banner: str  # the banner text the pages showed (distinct texts joined by " / ")
    stale_data_kept: bool  # the last good data stayed on screen, marked stale
    traceback_shown: bool
    result: str  # "pass" | "fail"
    measured: str = field(default_factory=_today)

    kind = "dashboard"

    def __post_init__(self) -> None:
        _check_common(self)
        if not self.pages:
            raise ValueError(f"{self.name}: name the page(s) the failure was tried on")
        object.__setattr__(self, "pages", tuple(self.pages))


Row = PipelineScenario | DashboardDegradation


def _check_common(row: Row) -> None:
    if not row.name.strip():
        raise ValueError("a scenario needs a name")
    if row.result not in RESULTS:
        raise ValueError(f"{row.name}: result must be one of {RESULTS}, not {row.result!r}")


_recorded: list[Row] = []
_BROKEN = (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR)


def record(row: Row) -> Row:
    """Keep ``row`` for this session's results (a later row of the same name wins)."""
    if not isinstance(row, PipelineScenario | DashboardDegradation):
        raise TypeError(f"record takes a PipelineScenario or DashboardDegradation, not {row!r}")
    _recorded.append(row)
    return row


def recorded() -> list[Row]:
    return list(_recorded)


def dump() -> list[dict]:
    """This session's rows as plain dicts, for an xdist worker to hand to the controller."""
    return [{"kind": row.kind, **asdict(row)} for row in _recorded]


def load(rows: list[dict]) -> None:
    """Record rows ``dump`` made in another process, in their order."""
    kinds = {kind.kind: kind for kind in (PipelineScenario, DashboardDegradation)}
    for row in rows:
        values = dict(row)
        record(kinds[values.pop("kind")](**values))


def publish(
    exitstatus: int,
    *,
    collection_failed: bool,
    json_path: Path = RESULTS_JSON,
    md_path: Path = RESULTS_MD,
    seed_path: Path | None = None,
) -> bool:
    """At the end of a session: merge its rows into ``json_path`` (or, when there is none
    yet, into the rows of ``seed_path``) and render ``md_path``.

    Writes nothing (and returns False) when no row was recorded, when collection failed (a
    partial suite must not look complete), or when the session was interrupted or broke.
    """
    if not _recorded or collection_failed or exitstatus in _BROKEN:
        return False
    write_results(_recorded, json_path, md_path, seed_path=seed_path)
    return True


# --- the files ----------------------------------------------------------------------------


def load_results(json_path: Path) -> dict[str, dict[str, dict]]:
    """{kind: {name: row as a dict}} from the JSON file (empty when there is none yet)."""
    results: dict[str, dict[str, dict]] = {kind: {} for kind in _KINDS}
    if json_path.is_file():
        stored = json.loads(json_path.read_text(encoding="utf-8"))
        for kind in _KINDS:
            results[kind] = {row["name"]: row for row in stored.get(kind, [])}
    return results


def merge_results(results: dict[str, dict[str, dict]], rows: list[Row]) -> None:
    for row in rows:
        values = asdict(row)
        if isinstance(row, DashboardDegradation):
            values["pages"] = list(row.pages)
        results[row.kind][row.name] = values


def write_results(
    rows: list[Row], json_path: Path, md_path: Path, *, seed_path: Path | None = None
) -> None:
    results = load_results(json_path if json_path.is_file() or seed_path is None else seed_path)
    merge_results(results, rows)
    ordered = {kind: [results[kind][name] for name in sorted(results[kind])] for kind in _KINDS}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(ordered, indent=2, ensure_ascii=False) + "\n", "utf-8")
    long_runs = sections(DOCS_MD.read_text(encoding="utf-8")) if DOCS_MD.is_file() else {}
    md_path.write_text(with_sections(render_markdown(ordered), long_runs), encoding="utf-8")


# --- the markdown -------------------------------------------------------------------------

PIPELINE_COLUMNS = (
    ("scenario", "what was done to the pipeline."),
    ("measured", "the date (UTC) the row was last measured by the test suite."),
    ("sent", "records put on the stream or in the micro-batch, valid or not."),
    ("in silver", "events silver holds afterwards (valid, deduplicated)."),
    ("duplicates", "valid records dropped because their event_id had been seen already."),
    (
        "quarantined",
        "records in quarantine, then the records carrying each reason code "
        "(a record with several reasons counts under each).",
    ),
    ("kills", "times the stream job was killed and restarted during the scenario."),
    ("lost", "events that should be in silver or gold and are not: must be 0."),
    ("double-counted", "events counted more than once in silver or gold: must be 0."),
    ("result", "pass when every check of the scenario's test held."),
    ("notes", "how the figures were checked, in short."),
)
DASHBOARD_COLUMNS = (
    ("cause injected", "what broke under the dashboard, after a first good load."),
    ("measured", "the date (UTC) the row was last measured by the test suite."),
    ("pages", "the pages it was tried on, one after the other."),
    ("banner shown", "the one-line banner the pages showed."),
    ("stale data kept", "whether the last good data stayed on screen, marked stale."),
    ("traceback", "whether any page showed a Python traceback: must be no."),
    ("result", "pass when every page showed the banner and its stale data, and no traceback."),
)


def _cell(value: object) -> str:
    text = " ".join(str(value).split())
    return text.replace("|", "\\|")


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _reasons(row: dict) -> str:
    by_reason = row["quarantined_by_reason"]
    detail = ", ".join(f"`{reason}` {n}" for reason, n in sorted(by_reason.items()))
    return f"{row['quarantined']}" + (f": {detail}" if detail else "")


def _table(columns, body: list[list[str]]) -> list[str]:
    names = [name for name, _ in columns]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in body]
    return lines


def _explained(columns) -> list[str]:
    return [f"- **{name}**: {meaning}" for name, meaning in columns]


def _tally(rows: list[dict]) -> str:
    passed = sum(row["result"] == "pass" for row in rows)
    return f"{passed} pass, {len(rows) - passed} fail"


def render_markdown(results: dict[str, list[dict]]) -> str:
    """docs/reliability.md from every row of the JSON."""
    pipeline, dashboard = results.get("pipeline", []), results.get("dashboard", [])
    lines = [
        "# Reliability results",
        "",
        "Generated by the test suite from `docs/reliability.json`; do not edit by hand. Each "
        "test measures its scenario on the real job, lake, CLI or dashboard and replaces its "
        "own row (see `tests/reliability.py`), so **measured** dates can differ between rows.",
        "",
        "## Pipeline scenarios",
        "",
    ]
    if pipeline:
        body = [
            [
                row["name"],
                row["measured"],
                f"{row['events_sent']:,}",
                f"{row['events_in_silver']:,}",
                f"{row['duplicates_dropped']:,}",
                _reasons(row),
                row["kills_survived"],
                row["lost_events"],
                row["double_counted_events"],
                row["result"],
                row["notes"],
            ]
            for row in pipeline
        ]
        total_reasons: dict[str, int] = {}
        for row in pipeline:
            for reason, n in row["quarantined_by_reason"].items():
                total_reasons[reason] = total_reasons.get(reason, 0) + n
        body.append(
            [
                f"**total ({len(pipeline)} scenarios)**",
                "",
                f"{sum(r['events_sent'] for r in pipeline):,}",
                f"{sum(r['events_in_silver'] for r in pipeline):,}",
                f"{sum(r['duplicates_dropped'] for r in pipeline):,}",
                f"{sum(r['quarantined'] for r in pipeline):,} ({len(total_reasons)} reasons)",
                sum(r["kills_survived"] for r in pipeline),
                f"**{sum(r['lost_events'] for r in pipeline)}**",
                f"**{sum(r['double_counted_events'] for r in pipeline)}**",
                _tally(pipeline),
                "",
            ]
        )
        lines += _table(PIPELINE_COLUMNS, body)
    else:
        lines.append("No pipeline scenario has been measured yet.")
    lines += ["", *_explained(PIPELINE_COLUMNS), "", "## Dashboard degradations", ""]
    if dashboard:
        body = [
            [
                row["cause"],
                row["measured"],
                ", ".join(row["pages"]),
                row["banner"],
                _yes(row["stale_data_kept"]),
                _yes(row["traceback_shown"]),
                row["result"],
            ]
            for row in dashboard
        ]
        body.append(
            [
                f"**total ({len(dashboard)} causes)**",
                "",
                f"{sum(len(r['pages']) for r in dashboard)} page runs",
                "",
                f"{sum(r['stale_data_kept'] for r in dashboard)} of {len(dashboard)}",
                f"**{sum(r['traceback_shown'] for r in dashboard)}**",
                _tally(dashboard),
            ]
        )
        lines += _table(DASHBOARD_COLUMNS, body)
    else:
        lines.append("No dashboard degradation has been measured yet.")
    lines += ["", *_explained(DASHBOARD_COLUMNS), ""]
    return "\n".join(lines)
