"""``telcopulse status`` in local mode, against a lake the real job built (``csv_lake``).

The expected batch id, time, records and quarantine count are read from the lake's ``_ops``
files directly (DuckDB's ``read_parquet``), not through the engine and SQL under test. The
stream is either a port nothing listens on, or the real emulator (kinesalite). The local
stream job is a real process whose id sits in the pid file; ``telcopulse stream`` itself
runs with its Spark job replaced (the pid file is written around it, in backend/cli.py).
Status in aws mode (moto) is in tests/telcopulse_deploy/test_deploy.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, timedelta
from pathlib import Path

import duckdb
import pytest
from helpers import free_port

from backend.cli import main as cli_main
from backend.settings import load_settings
from backend.stack import recording_pid, running_pid, stream_pid_path
from backend.status import collect_status, format_age, format_status, status_json
from glue_job.tables import OPS


def ops_rows(lake: Path) -> list[dict]:
    """The lake's _ops rows, oldest batch first, read straight from its Parquet files."""
    frame = duckdb.sql(
        "SELECT batch_id, batch_end, records_read, quarantine_rows "
        f"FROM read_parquet('{OPS.file_glob(str(lake))}', hive_partitioning = true) "
        "ORDER BY batch_id"
    ).df()
    return frame.to_dict("records")


def iso(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def offline(tmp_path, csv_lake):
    """Local settings over the csv lake, with a Kinesis port nothing listens on."""
    return load_settings(home=tmp_path / "home", lake_uri=str(csv_lake), emulator_port=free_port())


@pytest.fixture
def sleeper():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


def test_status_reads_the_newest_batch_and_says_what_is_down(offline, csv_lake, csv_records):
    newest = ops_rows(csv_lake)[-1]
    assert newest["batch_id"] == 1  # csv_lake is two batches
    assert newest["records_read"] == len(csv_records) - len(csv_records) // 2
    assert newest["quarantine_rows"] > 0  # mobile-logs.csv has rows the contract refuses
    committed = newest["batch_end"].to_pydatetime()
    now = committed + timedelta(minutes=3, seconds=7)

    checks = collect_status(offline, now=now)

    assert [c.name for c in checks] == ["stream", "job", "batch", "quarantine"]
    stream, job, batch, quarantine = checks
    assert not stream.ok
    assert stream.text.startswith(
        f"telcopulse-events at {offline.endpoint_url}: not reachable: EndpointConnectionError: "
    )
    assert "\n" not in stream.text
    assert not job.ok
    assert job.text == (
        "not running: no local stream job (start it: `telcopulse stream`, or `telcopulse up`)"
    )
    read, quarantined = newest["records_read"], newest["quarantine_rows"]
    assert batch.ok
    assert batch.text == f"1 committed 3m 07s ago ({iso(committed)}), {read:,} records read"
    assert batch.facts == {
        "batch_id": 1,
        "committed_at": iso(committed),
        "age_seconds": round((now - committed).total_seconds(), 1),
        "records_read": read,
    }
    assert quarantine.ok
    assert quarantine.text == f"{quarantined:,} of {read:,} records in batch 1"

    block = format_status(offline, checks).splitlines()
    assert block[0] == f"mode        local (lake {csv_lake})"
    assert [line[:12] for line in block] == [
        "mode        ",
        "stream      ",
        "job         ",
        "batch       ",
        "quarantine  ",
    ]
    document = json.loads(status_json(offline, checks))
    assert document["ok"] is False
    assert document["batch"]["batch_id"] == 1
    assert document["quarantine"]["quarantined"] == quarantined
    assert document["stream"]["status"] is None


def test_cli_status_exits_1_when_something_is_down(
    offline, csv_lake, monkeypatch, capsys, tmp_path
):
    monkeypatch.setenv("TELCOPULSE_LAKE_URI", str(csv_lake))
    monkeypatch.setenv("TELCOPULSE_EMULATOR_PORT", str(offline.emulator_port))
    home = str(tmp_path / "home")
    newest = ops_rows(csv_lake)[-1]

    assert cli_main(["--home", home, "status"]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 5
    assert lines[1].startswith("stream      telcopulse-events at http://127.0.0.1:")
    assert ": not reachable: " in lines[1]
    assert lines[2].startswith("job         not running: no local stream job")
    assert lines[3].startswith("batch       1 committed ")
    assert lines[4] == (
        f"quarantine  {newest['quarantine_rows']:,} of {newest['records_read']:,} records in "
        "batch 1"
    )

    assert cli_main(["--home", home, "status", "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["mode"] == "local"
    assert document["ok"] is False
    assert [document[k]["ok"] for k in ("stream", "job", "batch", "quarantine")] == [
        False,
        False,
        True,
        True,
    ]
    assert document["job"]["pid_file"] == str(tmp_path / "home" / "stream.pid")


def test_an_empty_lake_has_no_batch_yet(tmp_path):
    settings = load_settings(home=tmp_path / "home", emulator_port=free_port())
    batch, quarantine = collect_status(settings)[2:]
    assert (batch.ok, batch.text) == (False, "none committed yet (is the stream job running?)")
    assert (quarantine.ok, quarantine.text) == (True, "no batch yet")


def test_the_pid_file_tells_a_running_job_from_a_stale_file(tmp_path, sleeper):
    settings = load_settings(home=tmp_path / "home", emulator_port=free_port())
    path = stream_pid_path(settings)
    assert path == (tmp_path / "home" / "stream.pid").resolve()
    assert running_pid(path) is None  # no file

    path.parent.mkdir(parents=True)
    path.write_text(f"{sleeper.pid}\n")
    job = collect_status(settings)[1]
    assert (job.ok, job.text) == (True, f"local stream job running (pid {sleeper.pid})")

    sleeper.kill()
    sleeper.wait()  # reaped: its pid no longer exists
    job = collect_status(settings)[1]
    assert not job.ok
    assert job.text == (
        "not running: its pid file is stale (start it: `telcopulse stream`, or `telcopulse up`)"
    )
    path.write_text("not a pid\n")
    assert running_pid(path) is None


def test_recording_pid_removes_only_its_own_file(tmp_path):
    path = tmp_path / "home" / "stream.pid"
    with recording_pid(path):
        assert running_pid(path) == os.getpid()
    assert not path.exists()

    with recording_pid(path):
        path.write_text("1\n")  # another job took over the file meanwhile
    assert path.read_text() == "1\n"


@pytest.mark.slow
def test_status_answers_with_the_emulator_and_a_running_stream_command(
    tmp_path, csv_lake, monkeypatch, capsys
):
    """`telcopulse stream` records its pid while its job runs; status then exits 0."""
    from backend.emulator import start_emulator, stop_emulator, wait_until_ready

    port = free_port()
    monkeypatch.setenv("TELCOPULSE_LAKE_URI", str(csv_lake))
    monkeypatch.setenv("TELCOPULSE_EMULATOR_PORT", str(port))
    home = tmp_path / "home"
    settings = load_settings(home=home)
    seen: dict[str, object] = {}

    def job_that_asks_for_status(**_options) -> int:  # the Spark job's stand-in
        seen["code"] = cli_main(["--home", str(home), "status"])
        seen["out"] = capsys.readouterr().out
        return 0

    monkeypatch.setattr("glue_job.local_entry.run_stream", job_that_asks_for_status)
    emulator = start_emulator(settings)
    try:
        wait_until_ready(settings, timeout=30, proc=emulator)
        assert cli_main(["--home", str(home), "stream"]) == 0  # creates the stream, then "runs"
        after = cli_main(["--home", str(home), "status"])
    finally:
        stop_emulator(emulator)

    lines = str(seen["out"]).splitlines()
    assert seen["code"] == 0
    assert (
        lines[1]
        == f"stream      telcopulse-events at http://127.0.0.1:{port}: ACTIVE, 2 open shards"
    )
    assert lines[2] == f"job         local stream job running (pid {os.getpid()})"
    assert lines[3].startswith("batch       1 committed ")
    # The stream command removed its pid file on the way out.
    assert not stream_pid_path(settings).exists()
    assert after == 1
    assert "job         not running: no local stream job" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["status", "--format", "xml"],
            "telcopulse status: error: argument --format: invalid choice: 'xml' (choose from "
            "'text', 'json') (see `telcopulse status --help`)",
        ),
        (
            ["status", "--bogus"],
            "telcopulse: error: unrecognized arguments: --bogus (see `telcopulse --help`)",
        ),
        (
            ["deploy", "--job-timeout", "-5"],
            "telcopulse deploy: error: argument --job-timeout: must be greater than 0: -5 (see "
            "`telcopulse deploy --help`)",
        ),
    ],
)
def test_a_bad_option_gets_one_line_and_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        cli_main(argv)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == message + "\n"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59.9, "59s"),
        (65, "1m 05s"),
        (3600, "1h 00m"),
        (7260, "2h 01m"),
        (90000, "1d 1h"),
    ],
)
def test_format_age(seconds, text):
    assert format_age(seconds) == text
