"""Stream-job benchmark: sustained throughput and produce-to-KPI freshness.

Runs the real local stack (kinesalite, `telcopulse stream`, DuckDB) in a
throwaway data directory and prints a Markdown report. Usage:

    .venv/bin/python bench/stream_bench.py [--events 200000] [--rate 200] [--minutes 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from backend.emulator import start_emulator, stop_emulator, wait_until_ready
from backend.engine import DuckDBEngine
from backend.kinesis import ensure_stream, kinesis_client
from backend.producer import send
from backend.settings import load_settings
from backend.synthetic import SyntheticGenerator

BATCH_LINE = re.compile(r"batch (\d+): (\d+) read, .* in ([\d.]+)s")


def cli(settings, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "TELCOPULSE_HOME": str(settings.home)}
    env["TELCOPULSE_EMULATOR_PORT"] = str(settings.emulator_port)
    env["TELCOPULSE_STREAM_NAME"] = settings.stream_name
    return subprocess.Popen(
        [sys.executable, "-m", "backend.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def measure_throughput(settings, events: int) -> dict:
    """Queue `events` records, then time `stream --until-idle` draining them."""
    client = kinesis_client(settings)
    ensure_stream(client, settings.stream_name, settings.shards)
    generator = iter(SyntheticGenerator(seed=7))
    started = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        stats = send(client, settings.stream_name, generator, count=events, progress=quiet)
    produce_seconds = time.perf_counter() - started

    job = cli(settings, "stream", "--until-idle")
    batches = []
    finished_at = []
    for line in job.stdout:
        match = BATCH_LINE.search(line)
        if match:
            batches.append((int(match[2]), float(match[3])))
            finished_at.append(time.perf_counter())
    job.wait()
    steady = batches[1:] or batches
    steady_rows = sum(r for r, _ in steady)
    steady_seconds = sum(s for _, s in steady)
    # Wall clock from the end of the warm-up batch to the end of the last one: this
    # includes reading and Spark's own per-trigger work, not just foreachBatch.
    wall = finished_at[-1] - finished_at[0] if len(finished_at) > 1 else None
    return {
        "events": events,
        "producer_rate": stats.sent / produce_seconds,
        "batches": len(batches),
        "first_batch_seconds": batches[0][1] if batches else None,
        "steady_rate": steady_rows / steady_seconds if steady_seconds else None,
        "sustained_rate_wall_clock": steady_rows / wall if wall else None,
        "steady_batch_rows": statistics.mean(r for r, _ in steady) if steady else None,
        "exit_code": job.returncode,
    }


def measure_freshness(settings, rate: float, minutes: float) -> dict:
    """Background load at `rate`, plus a marker event every few seconds; time each to the KPI."""
    client = kinesis_client(settings)
    ensure_stream(client, settings.stream_name, settings.shards)
    job = cli(settings, "stream")
    stop = threading.Event()
    drain = threading.Thread(target=lambda: [None for _ in job.stdout], daemon=True)
    drain.start()

    def load() -> None:
        generator = iter(SyntheticGenerator(seed=11))
        with open(os.devnull, "w") as quiet:
            while not stop.is_set():
                send(
                    client,
                    settings.stream_name,
                    generator,
                    rate=rate,
                    count=int(rate),
                    progress=quiet,
                )

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    engine = DuckDBEngine(settings.lake)
    sql = "SELECT count(*) AS n FROM gold_operator_minute WHERE operator = ?"
    # Warm up until the first batch is committed, so start-up is not counted.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (Path(settings.lake) / "_ops").exists():
        time.sleep(0.5)
    time.sleep(5)
    latencies = []
    end = time.monotonic() + minutes * 60
    while time.monotonic() < end:
        marker = f"MARKER-{uuid.uuid4().hex[:8]}"
        event = {
            "event_id": uuid.uuid4().hex,
            "event_time": datetime.now(UTC).isoformat(),
            "operator": marker,
            "status": 0,
            "signal_dbm": -80,
        }
        sent_at = time.monotonic()
        client.put_record(
            StreamName=settings.stream_name, Data=json.dumps(event).encode(), PartitionKey=marker
        )
        while time.monotonic() - sent_at < 120:
            # What `telcopulse kpi` sees: committed gold for this marker's operator.
            if int(engine.run(sql, [marker.upper()])["n"].iloc[0]) > 0:
                latencies.append(time.monotonic() - sent_at)
                break
            time.sleep(0.1)
        time.sleep(2)
    stop.set()
    job.send_signal(2)
    job.wait(timeout=120)
    latencies.sort()
    return {
        "rate": rate,
        "samples": len(latencies),
        "p50": statistics.median(latencies) if latencies else None,
        "p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
        "max": latencies[-1] if latencies else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--minutes", type=float, default=2, help="freshness run; 0 skips it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="telcopulse-bench-") as tmp:
        port = 4570
        settings = load_settings(home=Path(tmp), emulator_port=port)
        emulator = start_emulator(settings)
        try:
            wait_until_ready(settings, timeout=30)
            throughput = measure_throughput(settings, args.events)
            print(json.dumps({"throughput": throughput}, indent=2), flush=True)
            if not args.minutes:
                return 0
            fresh = load_settings(home=Path(tmp) / "fresh", emulator_port=port, stream_name="fresh")
            freshness = measure_freshness(fresh, args.rate, args.minutes)
            print(json.dumps({"freshness": freshness}, indent=2), flush=True)
        finally:
            stop_emulator(emulator)
    return 0


if __name__ == "__main__":
    sys.exit(main())
