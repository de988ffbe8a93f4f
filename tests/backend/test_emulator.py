"""Local Kinesis: kinesalite command, start/stop without orphans, persistence, moto fallback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from backend import emulator
from backend.emulator import (
    EmulatorError,
    endpoint_answers,
    kinesalite_command,
    missing_kinesalite,
    start_emulator,
    stop_emulator,
    wait_until_ready,
)
from backend.kinesis import ensure_stream, kinesis_client
from backend.settings import load_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def child_pids(pid: int) -> list[int]:
    pids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


@pytest.fixture
def settings(tmp_path):
    return load_settings(home=tmp_path / "home", emulator_port=free_port())


def put_and_read(settings, payloads: list[bytes]) -> list[bytes]:
    client = kinesis_client(settings)
    ensure_stream(client, settings.stream_name, settings.shards)
    client.put_records(
        StreamName=settings.stream_name,
        Records=[{"Data": data, "PartitionKey": str(i)} for i, data in enumerate(payloads)],
    )
    return read_all(settings)


def read_all(settings) -> list[bytes]:
    client = kinesis_client(settings)
    out = []
    for shard in client.list_shards(StreamName=settings.stream_name)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=settings.stream_name,
            ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON",
        )["ShardIterator"]
        page = client.get_records(ShardIterator=iterator, Limit=10_000)
        out += [record["Data"] for record in page["Records"]]
    return sorted(out)


# -- fast ------------------------------------------------------------------------------------


def test_kinesalite_command_runs_node_directly_on_the_settings_port_and_dir(settings):
    assert kinesalite_command(settings) == [
        "node",
        "--max-old-space-size=96",  # V8's heap bounded (NODE_OLD_SPACE_MB)
        "--require",  # LevelDB's open files bounded (LEVELDB_PRELOAD)
        str(PROJECT_ROOT / "backend" / "kinesalite_leveldb.js"),
        str(PROJECT_ROOT / "node_modules" / "kinesalite" / "cli.js"),
        "--port",
        str(settings.emulator_port),
        "--path",
        str(settings.emulator_dir),
        "--createStreamMs",
        "0",
        "--deleteStreamMs",
        "0",
        "--updateStreamMs",
        "0",
        "--shardLimit",
        "100",
    ]


# Writes 160 MB through kinesalite's own leveldown (64 KB write buffer, so hundreds of table
# files), then counts the table files the process holds open. LevelDB maps each table it
# keeps open (POSIX mmap), so /proc/self/maps lists them: with the preload at most its limit,
# without it nearly all of them.
OPEN_TABLES = textwrap.dedent(
    r"""
    const crypto = require('crypto')
    const fs = require('fs')
    const leveldown = require(process.argv[2])
    const db = leveldown(process.argv[3])
    db.open({ maxFileSize: 1024 * 1024, writeBufferSize: 64 * 1024 }, async (err) => {
      if (err) throw err
      for (let n = 0; n < 640; n++) {
        const ops = []
        for (let i = 0; i < 250; i++) {
          const key = `${String(n).padStart(4, '0')}/${i}`
          ops.push({ type: 'put', key, value: crypto.randomBytes(1000) })
        }
        await new Promise((done, fail) => db.batch(ops, (e) => (e ? fail(e) : done())))
      }
      const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\n')
      const open = new Set(maps.filter((m) => m.endsWith('.ldb')).map((m) => m.split(/\s+/).pop()))
      const tables = fs.readdirSync(process.argv[3]).filter((f) => f.endsWith('.ldb'))
      console.log(JSON.stringify({ open: open.size, tables: tables.length }))
      db.close(() => {})
    })
    """
)


@pytest.mark.skipif(missing_kinesalite() is not None, reason="needs node and kinesalite")
@pytest.mark.parametrize("preloaded", [True, False], ids=["preloaded", "leveldb's default"])
def test_the_emulators_leveldb_keeps_at_most_100_table_files_open(tmp_path, preloaded):
    script = tmp_path / "open_tables.js"
    script.write_text(OPEN_TABLES)
    leveldown = PROJECT_ROOT / "node_modules" / "leveldown"
    preload = ["--require", str(emulator.LEVELDB_PRELOAD)] if preloaded else []
    out = subprocess.run(
        ["node", *preload, str(script), str(leveldown), str(tmp_path / "db")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    counts = json.loads(out)
    assert counts["tables"] > 120, counts  # more tables than the limit
    if preloaded:
        assert 0 < counts["open"] <= 100, counts
    else:
        assert counts["open"] > 100, counts


def test_missing_node_is_explained(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert missing_kinesalite().startswith("Node.js is not installed")


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH")
def test_missing_kinesalite_package_is_explained(monkeypatch, tmp_path):
    monkeypatch.setattr(emulator, "KINESALITE_CLI", tmp_path / "cli.js")
    assert missing_kinesalite().startswith("kinesalite is not installed; run `npm install`")


def test_kinesalite_is_used_when_installed():
    assert missing_kinesalite() is None


def test_nothing_listening_means_the_endpoint_does_not_answer(settings):
    started = time.monotonic()
    assert endpoint_answers(settings) is False
    assert time.monotonic() - started < 2


def test_a_busy_port_is_refused_with_advice(settings):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", settings.emulator_port))
        busy.listen()
        with pytest.raises(EmulatorError, match=r"already in use .*TELCOPULSE_EMULATOR_PORT"):
            start_emulator(settings)


def test_an_emulator_that_dies_at_start_fails_fast(settings):
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    started = time.monotonic()
    with pytest.raises(EmulatorError, match="exited with code 3"):
        wait_until_ready(settings, timeout=30, proc=proc)
    assert time.monotonic() - started < 5


def test_stop_escalates_to_kill_when_sigterm_is_ignored():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout.readline() == b"ready\n"
    assert stop_emulator(proc, timeout=0.5) == -signal.SIGKILL
    proc.stdout.close()


# -- slow: real processes ------------------------------------------------------------------


@pytest.mark.slow
def test_kinesalite_starts_serves_persists_and_stops_without_orphans(settings):
    proc = start_emulator(settings)
    try:
        wait_until_ready(settings, timeout=30, proc=proc)
        assert endpoint_answers(settings)
        node, *_flags, script = proc.args[: proc.args.index("--port")]
        assert (node, Path(script).name) == ("node", "cli.js")  # node itself, no npx wrapper
        assert put_and_read(settings, [b"a", b"b", b"c"]) == [b"a", b"b", b"c"]
    finally:
        stop_emulator(proc)
    assert not alive(proc.pid)
    assert not endpoint_answers(settings)
    assert (settings.home / "logs" / "emulator.log").read_text().startswith("Listening at")

    again = start_emulator(settings)
    try:
        wait_until_ready(settings, timeout=30, proc=again)
        assert read_all(settings) == [b"a", b"b", b"c"]  # records survived the restart
    finally:
        stop_emulator(again)


@pytest.mark.slow
def test_kinesalite_dies_with_the_process_that_started_it(settings):
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from backend.emulator import start_emulator
                from backend.settings import load_settings
                settings = load_settings(home={str(settings.home)!r},
                                         emulator_port={settings.emulator_port})
                print(start_emulator(settings).pid, flush=True)
                time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        cwd=PROJECT_ROOT,
    )
    node_pid = int(parent.stdout.readline())
    try:
        wait_until_ready(settings, timeout=30)
        parent.kill()  # no cleanup code can run: only the kernel can stop node now
        parent.wait()
        assert wait_dead(node_pid), "kinesalite outlived its parent"
    finally:
        parent.kill()
        parent.stdout.close()
        if alive(node_pid):  # leave no orphan behind, even when the test fails
            os.kill(node_pid, signal.SIGKILL)


@pytest.mark.slow
def test_foreground_emulator_stops_node_on_sigterm(settings):
    env = {
        **os.environ,
        "TELCOPULSE_HOME": str(settings.home),
        "TELCOPULSE_EMULATOR_PORT": str(settings.emulator_port),
    }
    runner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from backend.emulator import run_emulator; "
            "from backend.settings import load_settings; "
            "sys.exit(run_emulator(load_settings()))",
        ],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_ready(settings, timeout=30)
        [node_pid] = child_pids(runner.pid)
        runner.terminate()
        assert runner.wait(10) == 0
        assert wait_dead(node_pid)
        assert b"Ctrl-C stops it" in runner.stderr.read()
    finally:
        runner.kill()
        runner.stderr.close()


@pytest.mark.slow
def test_moto_server_takes_over_without_node(settings, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(settings.home))  # no node on PATH
    proc = start_emulator(settings)
    try:
        warning = capsys.readouterr().err.splitlines()
        assert len(warning) == 1
        assert warning[0].startswith("warning: using moto's Kinesis server")
        assert "in memory only" in warning[0]
        assert "install it and run `npm install`" in warning[0]
        assert proc.args[1:3] == ["-m", "moto.server"]

        wait_until_ready(settings, timeout=60, proc=proc)
        payloads = [f"record-{i}".encode() for i in range(50)]
        assert put_and_read(settings, payloads) == sorted(payloads)
        assert settings.emulator_dir.is_dir()
    finally:
        stop_emulator(proc)
    assert not alive(proc.pid)
