"""The results framework behind docs/reliability.md: merging by name, rendering, guards."""

from __future__ import annotations

import json

import pytest
import reliability
from reliability import DashboardDegradation, PipelineScenario


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


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "reliability.json", tmp_path / "reliability.md"


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
