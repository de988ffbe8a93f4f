"""End to end through the CLI: emulator -> produce -> stream --until-idle -> kpi.

The expected KPIs are computed here from the CSV with pandas, independently of
the pipeline's own code, under DESIGN.md's rules.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import MOBILE_LOGS, REPLAY_DATE, free_port
from stack_helpers import Stack, cli_command, running_emulator

from glue_job.contract import ALIASES_FILE

pytestmark = pytest.mark.slow


def expected_from_csv() -> dict[str, pd.DataFrame]:
    """DESIGN.md's mapping and validation, applied with plain pandas."""
    rows = pd.read_csv(MOBILE_LOGS, dtype=str, keep_default_na=False)
    asu = pd.to_numeric(rows["signal"], errors="coerce")
    dbm = (2 * asu - 113).where(asu != 99)
    lat = pd.to_numeric(rows["lat"], errors="coerce")
    lon = pd.to_numeric(rows["long"], errors="coerce")
    precision = pd.to_numeric(rows["precission"], errors="coerce")
    operator = rows["operator"].str.strip().str.lower()
    postal = rows["postal_code"].map(lambda v: f"{int(float(v)):06d}" if v else "")
    status = rows["status"].astype(int)
    valid = (
        (operator != "")
        & (dbm.isna() | dbm.between(-140, -30))
        & (precision.isna() | precision.between(0, 10_000))
        & lat.between(-90, 90)
        & lon.between(-180, 180)
        & ~((lat == 0) & (lon == 0))
        & status.between(0, 3)
    )
    # The operator rule (README, Operators): a handset banner from the alias table's data is
    # no operator, and its status 0 becomes the status the banner means.
    banners = pd.read_csv(ALIASES_FILE, dtype=str, keep_default_na=False).query("operator == ''")
    banner = operator.map(dict(zip(banners["alias"], banners["status"], strict=True)))
    frame = pd.DataFrame(
        {
            "operator": operator.where(banner.isna()),
            "dbm": dbm,
            "precision": precision,
            "postal": postal,
        }
    )[valid]
    labels = {0: "IN_SERVICE", 1: "OUT_OF_SERVICE", 2: "EMERGENCY_ONLY", 3: "POWER_OFF"}
    frame["status"] = (
        status[valid]
        .map(labels)
        .where(~(banner[valid].notna() & (status[valid] == 0)), banner[valid])
    )
    signal_kpi = frame.dropna(subset=["dbm"]).groupby("operator")["dbm"].agg(["mean", "count"])
    precision_kpi = (
        frame.dropna(subset=["precision"]).groupby("operator")["precision"].agg(["mean", "count"])
    )
    status_kpi = frame.groupby(["postal", "status"]).size()
    return {
        "signal": signal_kpi,
        "precision": precision_kpi,
        "status": status_kpi,
        "valid_rows": int(valid.sum()),
    }


@pytest.fixture
def stack(tmp_path):
    stack = Stack(tmp_path / "home", free_port())
    with running_emulator(stack):
        yield stack


def assert_kpis_match_csv(stack: Stack) -> None:
    expected = expected_from_csv()
    signal_kpi = stack.kpi("signal")
    got = signal_kpi.assign(key=signal_kpi.operator.str.lower()).set_index("key")
    assert sorted(got.index) == sorted(expected["signal"].index)
    assert got.samples.to_dict() == expected["signal"]["count"].to_dict()
    for key, row in expected["signal"].iterrows():
        assert got.loc[key, "avg_signal_dbm"] == pytest.approx(row["mean"], abs=1e-9)

    precision_kpi = stack.kpi("precision")
    got = precision_kpi.assign(key=precision_kpi.operator.str.lower()).set_index("key")
    assert got.samples.to_dict() == expected["precision"]["count"].to_dict()
    for key, row in expected["precision"].iterrows():
        assert got.loc[key, "avg_precision_m"] == pytest.approx(row["mean"], abs=1e-9)

    status_kpi = stack.kpi("status")
    assert list(status_kpi.columns) == ["postal_code", "status", "events"]
    got = status_kpi.set_index(["postal_code", "status"]).events.to_dict()
    assert got == expected["status"].to_dict()


BAD_LINES = {
    "no-operator": ({"operator": None}, ["missing_operator"]),
    "too-strong": ({"signal_dbm": -5}, ["out_of_range_signal_dbm"]),
    "bad-status": ({"status": "broken"}, ["bad_type_status"]),
    "far-future": ({"event_time": "2999-01-01T00:00:00Z"}, ["future_event_time"]),
    "null-island": ({"latitude": 0, "longitude": 0}, ["out_of_range_position"]),
}


def write_bad_feed(path: Path) -> Path:
    base = {
        "event_time": f"{REPLAY_DATE}T10:00:00Z",
        "operator": "Orange",
        "status": 1,
        "signal_dbm": -101,
    }
    lines = ["this is not json", '{"event_id": "truncated", "operator": "Or']
    lines += [
        json.dumps({**base, "event_id": key, **change}) for key, (change, _) in BAD_LINES.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_replay_end_to_end_is_exact_idempotent_and_quarantines_bad_input(stack, tmp_path):
    produced = stack.cli("produce", "--file", str(MOBILE_LOGS), "--date", str(REPLAY_DATE))
    assert "sent 1000 records" in produced.stderr
    stack.cli("produce", "--file", str(write_bad_feed(tmp_path / "bad.jsonl")))
    stack.cli("stream", "--until-idle")

    sent = 1000 + 2 + len(BAD_LINES)
    assert len(stack.table("bronze")) == sent
    ops = stack.table("ops")
    assert ops.records_read.sum() == sent
    assert ops.silver_rows.sum() + ops.quarantine_rows.sum() + ops.duplicates.sum() == sent
    assert ops.silver_rows.sum() == expected_from_csv()["valid_rows"]

    quarantine = stack.table("quarantine")
    reasons = [list(r) for r in quarantine.reasons]
    csv_reasons = pd.Series([r for rs in reasons for r in rs]).value_counts()
    assert csv_reasons["out_of_range_signal_dbm"] == 5 + 1
    assert csv_reasons["missing_operator"] == 1 + 1
    assert reasons.count(["malformed_json"]) == 2
    by_id = {row.event_id: list(row.reasons) for row in quarantine.itertuples() if row.event_id}
    for key, (_, expected) in BAD_LINES.items():
        assert by_id[key] == expected
    assert quarantine.payload.str.contains("this is not json").any()
    assert_kpis_match_csv(stack)

    # The same file again: bronze doubles, silver and every KPI stay as they were.
    stack.cli("produce", "--file", str(MOBILE_LOGS), "--date", str(REPLAY_DATE))
    stack.cli("stream", "--until-idle")
    assert len(stack.table("bronze")) == sent + 1000
    ops = stack.table("ops")
    assert ops.silver_rows.sum() == expected_from_csv()["valid_rows"]
    assert ops.duplicates.sum() == expected_from_csv()["valid_rows"]
    assert (ops.bronze_rows == ops.silver_rows + ops.quarantine_rows + ops.duplicates).all()
    assert_kpis_match_csv(stack)


def test_stopped_stream_resumes_from_checkpoint_without_double_counting(stack):
    """A running job stopped with Ctrl-C and started again counts every event once."""
    stack.cli("produce", "--file", str(MOBILE_LOGS), "--date", str(REPLAY_DATE))
    job = subprocess.Popen(
        cli_command("stream", "--trigger", "1"),
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if (Path(stack.settings.lake) / "_ops").exists() and len(stack.table("ops")):
                break
            time.sleep(1)
        job.send_signal(signal.SIGINT)
        output, _ = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, output
    assert "stopped cleanly" in output

    # Damage the checkpoint as a crash or a careless hand would (glue_job.checkpoint): the
    # newest commit file truncated, and a half-written offsets file for the next batch.
    # The job must mend both from the lake's commits, not re-read or skip anything.
    checkpoint = Path(stack.settings.checkpoint_dir)
    newest = max(int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit())
    (checkpoint / "commits" / str(newest)).write_text("v1\n")
    (checkpoint / "offsets" / str(newest + 1)).write_text('v1\n{"batchWatermarkMs":0,"ba')

    # Resume from the checkpoint with a replay of the same file queued behind the rest.
    stack.cli("produce", "--file", str(MOBILE_LOGS), "--date", str(REPLAY_DATE))
    resumed = stack.cli("stream", "--until-idle").stderr
    assert f"removed commits of batch #{newest}: it was damaged" in resumed
    assert f"removed offsets of batch #{newest + 1}: it was damaged" in resumed
    ops = stack.table("ops")
    assert ops.records_read.sum() == 2000
    assert len(stack.table("silver")) == expected_from_csv()["valid_rows"]
    assert_kpis_match_csv(stack)
