"""The results framework behind docs/reliability.md: merging by name, rendering, guards, and
`make docs`, which copies what a passing session wrote to build/ into docs/."""

from __future__ import annotations

import json
import subprocess

import helpers
import pytest
import reliability
from helpers import PROJECT_ROOT
from reliability import DashboardDegradation, PipelineScenario

from bench.long_runs import replace_section


def scenario(name: str, **changes) -> PipelineScenario:
    values = {
        "name": name,
        "events_sent": 10,
        "events_in_silver": 6,
        "duplicates_dropped": 1,
        "quarantined": 3,
        "quarantined_by_reason": {"malformed_json": 2, "missing_status": 1},
        "kills_survived": 0,
        "lost_events": 0,
        "double_counted_events": 0,
        "result": "pass",
        "notes": "bronze = silver + quarantine + duplicates",
    }
    return PipelineScenario(**{**values, **changes})


def degradation(name: str, **changes) -> DashboardDegradation:
    values = {
        "name": name,
        "cause": "engine error",
        "pages": ("Home", "KPIs"),
        "banner": "Could not load the committed batch: IO Error | boom",
        "stale_data_kept": True,
        "traceback_shown": False,
        "result": "pass",
    }
    return DashboardDegradation(**{**values, **changes})


@pytest.fixture(autouse=True)
def no_long_runs(tmp_path, monkeypatch):
    """The tracked markdown's long-run sections stay out, unless a test writes some."""
    tracked = tmp_path / "tracked-reliability.md"
    monkeypatch.setattr(reliability, "DOCS_MD", tracked)
    return tracked


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "reliability.json", tmp_path / "reliability.md"


def test_the_long_run_sections_of_the_tracked_markdown_are_kept(paths, no_long_runs):
    """`make soak` and the viewers bench write their own sections (bench.long_runs); a test
    session's markdown carries them over from docs/ as they are, after its own tables."""
    replace_section("viewers", "## Many viewers\n\np95 1.2 s", no_long_runs)
    replace_section("soak", "## Soak\n\nflat", no_long_runs)
    reliability.write_results([scenario("a")], *paths)
    text = paths[1].read_text()
    body, soak, viewers = text.index("| a |"), text.index("## Soak"), text.index("## Many")
    assert body < soak < viewers
    assert "<!-- long-run:soak -->\n## Soak\n\nflat\n<!-- /long-run:soak -->" in text
    replace_section("soak", "## Soak\n\ngrowing", paths[1])
    text = paths[1].read_text()
    assert "growing" in text
    assert "flat" not in text
    assert "p95 1.2 s" in text
    assert text.count("| a |") == 1


def test_a_partial_run_replaces_only_its_own_rows(paths):
    json_path, md_path = paths
    reliability.write_results(
        [scenario("kept"), scenario("rerun", events_sent=5), degradation("ui")], *paths
    )
    reliability.write_results([scenario("rerun", events_sent=7, result="fail")], *paths)

    stored = json.loads(json_path.read_text())
    assert [row["name"] for row in stored["pipeline"]] == ["kept", "rerun"]
    assert stored["pipeline"][1]["events_sent"] == 7
    assert stored["pipeline"][1]["result"] == "fail"
    assert stored["pipeline"][0]["events_sent"] == 10  # untouched
    assert [row["name"] for row in stored["dashboard"]] == ["ui"]
    assert stored["dashboard"][0]["pages"] == ["Home", "KPIs"]
    assert md_path.read_text() == reliability.render_markdown(stored)


def test_the_build_copy_starts_from_the_tracked_one_and_then_merges_into_itself(tmp_path):
    tracked = tmp_path / "docs" / "reliability.json"
    reliability.write_results(
        [scenario("tracked"), scenario("rerun", events_sent=5)], tracked, tracked.with_suffix(".md")
    )
    build = tmp_path / "build" / "reliability.json", tmp_path / "build" / "reliability.md"

    # No build copy yet: a partial run still yields the whole table.
    reliability.write_results([scenario("rerun", events_sent=7)], *build, seed_path=tracked)
    stored = json.loads(build[0].read_text())
    assert [row["name"] for row in stored["pipeline"]] == ["rerun", "tracked"]
    assert [row["events_sent"] for row in stored["pipeline"]] == [7, 10]
    assert build[1].read_text() == reliability.render_markdown(stored)
    assert json.loads(tracked.read_text())["pipeline"][0]["events_sent"] == 5  # untouched

    # From then on the build copy is what a run merges into, not the tracked one.
    reliability.write_results(
        [scenario("tracked", events_sent=1)], tracked, tracked.with_suffix(".md")
    )
    reliability.write_results([scenario("later")], *build, seed_path=tracked)
    stored = json.loads(build[0].read_text())
    assert [row["name"] for row in stored["pipeline"]] == ["later", "rerun", "tracked"]
    assert [row["events_sent"] for row in stored["pipeline"]] == [10, 7, 10]


def test_markdown_shows_dates_totals_zero_losses_and_explains_every_column(paths):
    reliability.write_results(
        [scenario("a"), scenario("b", events_sent=20, result="fail"), degradation("ui")], *paths
    )
    text = paths[1].read_text()
    today = reliability.PipelineScenario.__dataclass_fields__["measured"].default_factory()
    assert (
        f"| a | {today} | 10 | 6 | 1 | 3: `malformed_json` 2, `missing_status` 1 | 0 | 0 | 0 |"
        in (text)
    )
    assert "| **total (2 scenarios)** |  | 30 | 12 | 2 | 6 (2 reasons) | 0 | **0** | **0** |" in (
        text
    )
    assert "1 pass, 1 fail" in text
    # A pipe in a banner cannot break the table.
    assert "IO Error \\| boom | yes | no | pass |" in text
    assert "| **total (1 causes)** |  | 2 page runs |  | 1 of 1 | **0** | 1 pass, 0 fail |" in text
    for name, _meaning in (*reliability.PIPELINE_COLUMNS, *reliability.DASHBOARD_COLUMNS):
        assert f"- **{name}**: " in text


def test_publish_writes_only_after_a_clean_session_that_recorded_something(monkeypatch, paths):
    json_path, md_path = paths
    monkeypatch.setattr(reliability, "_recorded", [])
    assert not reliability.publish(0, collection_failed=False, json_path=json_path, md_path=md_path)

    reliability.record(scenario("measured"))
    for status, collection_failed in (
        (pytest.ExitCode.INTERRUPTED, False),
        (pytest.ExitCode.USAGE_ERROR, False),
        (pytest.ExitCode.OK, True),
    ):
        assert not reliability.publish(
            status, collection_failed=collection_failed, json_path=json_path, md_path=md_path
        )
    assert not json_path.exists()
    # A failing test still publishes: its row says "fail" rather than hiding.
    assert reliability.publish(
        pytest.ExitCode.TESTS_FAILED, collection_failed=False, json_path=json_path, md_path=md_path
    )
    assert json.loads(json_path.read_text())["pipeline"][0]["name"] == "measured"


def test_rows_cross_from_an_xdist_worker_to_the_controller_unchanged(monkeypatch):
    """`make test` runs pytest-xdist workers: their rows reach the controller as JSON."""
    rows = [scenario("killed"), degradation("engine down"), scenario("killed", result="fail")]
    monkeypatch.setattr(reliability, "_recorded", list(rows))
    handed = json.loads(json.dumps(reliability.dump()))
    monkeypatch.setattr(reliability, "_recorded", [])
    reliability.load(handed)
    assert reliability.recorded() == rows


def test_rows_refuse_what_cannot_be_a_measurement():
    with pytest.raises(ValueError, match="result must be one of"):
        scenario("x", result="ok")
    with pytest.raises(ValueError, match="whole number"):
        scenario("x", lost_events=-1)
    with pytest.raises(ValueError, match="whole number"):
        scenario("x", quarantined_by_reason={"malformed_json": 1.5})
    with pytest.raises(ValueError, match="needs a name"):
        scenario(" ")
    with pytest.raises(ValueError, match="page"):
        degradation("x", pages=())
    with pytest.raises(TypeError):
        reliability.record({"name": "x"})


# --- build/ and make docs -----------------------------------------------------------------


def make_docs(root) -> subprocess.CompletedProcess:
    """`make docs` run in ``root`` as if it were the project: its build/ and docs/."""
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(root),
            "-f",
            str(PROJECT_ROOT / "Makefile"),
            "docs",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def session_wrote(monkeypatch, root, failure: str | None) -> None:
    """What a session leaves in ``root/build``: results, screenshots, and their stamps."""
    monkeypatch.setattr(helpers, "BUILD", root / "build")
    monkeypatch.setattr(helpers, "_written", set())
    results = helpers.build_output("reliability")
    reliability.write_results(
        [scenario("measured")], results / "reliability.json", results / "reliability.md"
    )
    (helpers.build_output("screenshots") / "home.png").write_bytes(b"\x89PNG new")
    helpers.stamp_build_outputs(failure)


@pytest.fixture
def project(tmp_path):
    """A project's docs/ as committed: last time's results and screenshot."""
    (tmp_path / "docs" / "screenshots").mkdir(parents=True)
    (tmp_path / "docs" / "reliability.json").write_text("old json")
    (tmp_path / "docs" / "reliability.md").write_text("old md")
    (tmp_path / "docs" / "screenshots" / "home.png").write_bytes(b"\x89PNG old")
    return tmp_path


def docs_of(root) -> list[bytes]:
    docs = root / "docs"
    return [
        (docs / name).read_bytes()
        for name in ("reliability.json", "reliability.md", "screenshots/home.png")
    ]


def test_make_docs_copies_what_a_passing_session_wrote(monkeypatch, project):
    session_wrote(monkeypatch, project, failure=None)
    assert (
        (project / "build" / "screenshots" / "session.txt")
        .read_text()
        .startswith("passed, finished ")
    )
    done = make_docs(project)
    assert done.returncode == 0, done.stdout + done.stderr
    build = project / "build"
    assert docs_of(project) == [
        (build / "reliability" / "reliability.json").read_bytes(),
        (build / "reliability" / "reliability.md").read_bytes(),
        b"\x89PNG new",
    ]
    assert "measured" in json.dumps(json.loads(docs_of(project)[0]))


def test_make_docs_refuses_in_one_line_without_results_or_after_a_failing_session(
    monkeypatch, project
):
    before = docs_of(project)
    done = make_docs(project)
    assert done.returncode != 0
    assert done.stdout.splitlines() == [
        "make docs: build/reliability holds no test results: run make test first"
    ]

    session_wrote(monkeypatch, project, failure="exit status 1: tests failed")
    done = make_docs(project)
    assert done.returncode != 0
    [line] = done.stdout.splitlines()
    assert line.startswith(
        "make docs: build/reliability comes from a test session that failed (exit status 1: "
        "tests failed), finished "
    )
    assert line.endswith(": make test must pass first")
    assert docs_of(project) == before  # nothing copied
