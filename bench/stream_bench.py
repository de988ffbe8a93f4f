"""Stream benchmark (bench): producer send rate, stream-job throughput and produce-to-KPI freshness.

Runs the real local stack in a throwaway data directory: kinesalite, `telcopulse stream`
and `telcopulse produce` as their own processes, as `telcopulse up` runs them. Freshness is
timed with marker events: each carries an operator name of its own, is put on the stream
by this process, and counts as fresh once `kpi_signal` (the query `telcopulse kpi signal`
runs) returns its operator. Usage:

    .venv/bin/python -m bench.stream_bench [--drain 400000] [--rates 200,1000,5000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import output_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# One producer process sends up to about this many events/s with room to spare on this
# kind of machine; faster loads are split over several, as handsets would be.
PER_PRODUCER = 5_000
MARKER_EVERY_S = 2.0
MARKER_TIMEOUT_S = 120.0


@dataclass
class Drain:
    events: int
    producer_seconds: float
    producer_rate: float
    batches: int
    first_batch_seconds: float
    steady_rate: float  # events/s from the end of the first batch to the end of the last
    # From launching `telcopulse stream` to its first batch's commit (the end of the batch):
    # the JVM, Spark, the Python workers and the first batch itself.
    startup_seconds: float = math.nan
    # From the last batch's commit to the process's exit: `--until-idle` noticing the dry
    # stream and stopping Spark.
    idle_exit_seconds: float = math.nan


@dataclass
class Live:
    offered_rate: float  # what the producers asked for
    sent_rate: float  # what they got onto the stream
    committed_rate: float  # what the job committed per second over the same time
    samples: int
    p50: float | None
    p95: float | None
    max: float | None
    backlog_seconds: float  # after the producers stop, until the job has committed it all
    batches: int
    mean_batch_records: float
    latencies: list[float] = field(default_factory=list)

    @property
    def keeps_up(self) -> bool:
        return self.committed_rate >= 0.95 * self.sent_rate and self.backlog_seconds < 15


def cli(settings, *args: str, log: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "TELCOPULSE_HOME": str(settings.home)}
    env["TELCOPULSE_EMULATOR_PORT"] = str(settings.emulator_port)
    env["TELCOPULSE_STREAM_NAME"] = settings.stream_name
    env["TELCOPULSE_SHARDS"] = str(settings.shards)
    out = log.open("a") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "backend.cli", *args],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=PROJECT_ROOT,
    )


def stop(process: subprocess.Popen, timeout: float = 120) -> None:
    """SIGTERM, then SIGKILL after ``timeout``: the emulator's stop works for any child."""
    from backend.emulator import stop_emulator

    stop_emulator(process, timeout)


def committed_ops(settings):
    """Every committed batch's _ops row, in batch order."""
    from backend.engine import DuckDBEngine
    from backend.queries import committed_batch

    engine = DuckDBEngine(settings.lake)
    if not (Path(settings.lake) / "_ops").exists():
        return None
    batch = committed_batch(engine)
    return engine.run(
        "SELECT batch_id, batch_start, batch_end, records_read, duration_seconds "
        "FROM ops WHERE ? BETWEEN commit_id AND visible_through ORDER BY batch_id",
        [batch],
    )


def measure_drain(settings, events: int, log=print) -> Drain:
    """Queue ``events`` synthetic records, then time `stream --until-idle` draining them."""
    from backend.frames import as_utc
    from backend.kinesis import ensure_stream, kinesis_client
    from backend.producer import send
    from backend.synthetic import SyntheticGenerator

    client = kinesis_client(settings)
    ensure_stream(client, settings.stream_name, settings.shards)
    records = [r for _, r in zip(range(events), SyntheticGenerator(seed=7), strict=False)]
    started = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        stats = send(client, settings.stream_name, records, progress=quiet)
    produce_seconds = time.perf_counter() - started
    log(f"  queued {stats.sent:,} events in {produce_seconds:.1f} s")
    launched = datetime.now(UTC)
    job = cli(settings, "stream", "--until-idle", log=settings.home / "drain.log")
    job.wait()
    exited = datetime.now(UTC)
    ops = committed_ops(settings)
    first, rest = ops.iloc[0], ops.iloc[1:]
    steady = rest["records_read"].sum()
    span = (rest["batch_end"].max() - first["batch_end"]).total_seconds() if len(rest) else 0
    return Drain(
        events=int(ops["records_read"].sum()),
        producer_seconds=round(produce_seconds, 2),
        producer_rate=stats.sent / produce_seconds,
        batches=len(ops),
        first_batch_seconds=float(first["duration_seconds"]),
        steady_rate=steady / span if span else math.nan,
        startup_seconds=(as_utc(first["batch_end"]) - launched).total_seconds(),
        idle_exit_seconds=(exited - as_utc(ops["batch_end"].max())).total_seconds(),
    )


class MarkerProbe:
    """Puts a marker event every couple of seconds; times each until `kpi signal` shows it."""

    def __init__(self, settings) -> None:
        from backend.engine import DuckDBEngine
        from backend.kinesis import kinesis_client

        self.settings = settings
        self.client = kinesis_client(settings)
        self.engine = DuckDBEngine(settings.lake)
        self.latencies: list[float] = []
        self.sent = 0  # markers put on the stream
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> list[float]:
        self.stopping.set()
        self.thread.join()
        return self.latencies

    def _visible(self, operator: str, since: datetime) -> bool:
        from backend.queries import Filters, Window, run_kpi

        window = Window(since=since - timedelta(minutes=1), until=since + timedelta(minutes=5))
        try:
            found = run_kpi(
                self.engine, "kpi_signal", window, filters=Filters(operators=(operator,))
            )
        except Exception:  # noqa: BLE001 - a lake half-written at start-up; look again
            return False
        return bool(len(found))

    def _run(self) -> None:
        while not self.stopping.is_set():
            name = f"MARKER-{uuid.uuid4().hex[:10].upper()}"
            now = datetime.now(UTC)
            marker = {
                "event_id": uuid.uuid4().hex,
                "event_time": now.isoformat(),
                "operator": name,
                "status": 0,
                "signal_dbm": -80,
            }
            sent = time.monotonic()
            self.sent += 1
            self.client.put_record(
                StreamName=self.settings.stream_name,
                Data=json.dumps(marker).encode(),
                PartitionKey=name,
            )
            while time.monotonic() - sent < MARKER_TIMEOUT_S and not self.stopping.is_set():
                if self._visible(name, now):
                    self.latencies.append(time.monotonic() - sent)
                    break
                time.sleep(0.1)
            self.stopping.wait(max(0.0, MARKER_EVERY_S - (time.monotonic() - sent)))


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def measure_live(settings, rate: float, seconds: float, log=print) -> Live:
    """Producers at ``rate`` for ``seconds`` against a running job, markers timed meanwhile."""
    from backend.kinesis import ensure_stream, kinesis_client

    ensure_stream(kinesis_client(settings), settings.stream_name, settings.shards)
    job = cli(settings, "stream", log=settings.home / "stream.log")
    try:
        deadline = time.monotonic() + 180
        while committed_ops(settings) is None and time.monotonic() < deadline:
            time.sleep(0.5)  # the first (empty) batch: JVM and Python workers are warm
        producers_n = max(1, math.ceil(rate / PER_PRODUCER))
        producers = [
            cli(
                settings,
                "produce",
                "--rate",
                f"{rate / producers_n:g}",
                "--seed",
                str(i),
                log=settings.home / f"producer-{i}.log",
            )
            for i in range(producers_n)
        ]
        time.sleep(5)  # let the producers reach their pace
        before = committed_ops(settings)
        probe = MarkerProbe(settings)
        started = time.monotonic()
        probe.start()
        time.sleep(seconds)
        latencies = probe.stop()
        during = time.monotonic() - started
        middle = committed_ops(settings)
        for producer in producers:
            stop(producer)
        stopped_at = datetime.now(UTC)
        sent_rate = sum(send_rate(settings.home / f"producer-{i}.log") for i in range(producers_n))
        # The backlog: from the producers' stop to the end of the batch that read the last
        # record sent (the job runs no batch while the stream is idle, so count them).
        total = sum(sent_count(settings.home / f"producer-{i}.log") for i in range(producers_n))
        total += probe.sent
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            ops = committed_ops(settings)
            if int(ops["records_read"].sum()) >= total:
                break
            time.sleep(1)
        busy = ops[ops["records_read"] > 0]
        backlog = (busy["batch_end"].max().to_pydatetime() - stopped_at).total_seconds()
    finally:
        stop(job)
    committed = int(middle["records_read"].sum()) - int(before["records_read"].sum())
    window = middle[middle["batch_id"] > before["batch_id"].max()]
    return Live(
        offered_rate=rate,
        sent_rate=sent_rate,
        committed_rate=committed / during,
        samples=len(latencies),
        p50=statistics.median(latencies) if latencies else None,
        p95=percentile(latencies, 0.95),
        max=max(latencies) if latencies else None,
        backlog_seconds=round(max(0.0, backlog), 1),
        batches=len(window),
        mean_batch_records=float(window["records_read"].mean()) if len(window) else 0.0,
        latencies=[round(v, 3) for v in latencies],
    )


def sent_count(log: Path) -> int:
    """Records the producer sent, from its closing line ("sent N records in S s")."""
    words = [line.split() for line in log.read_text().splitlines() if line.startswith("sent ")]
    return int(words[-1][1].replace(",", "")) if words else 0


def send_rate(log: Path) -> float:
    """The producer's own figure, from its closing line ("sent N records in S s")."""
    words = [line.split() for line in log.read_text().splitlines() if line.startswith("sent ")]
    if not words:
        return 0.0
    last = words[-1]
    return int(last[1].replace(",", "")) / float(last[4].rstrip("s"))


def stream_settings(root: Path, name: str, port: int, shards: int):
    from backend.settings import load_settings

    home = root / name
    home.mkdir(parents=True, exist_ok=True)
    return load_settings(home=home, emulator_port=port, stream_name=f"bench-{name}", shards=shards)


def shards_for(rate: float) -> int:
    """What the load needs on AWS: a shard takes 1,000 records/s (or 1 MB/s) of writes."""
    return max(2, math.ceil(rate / 1000))


def run(root: Path, *, drain: int, rates: list[float], seconds: float, shards: int, log=print):
    """The whole stream benchmark against one emulator; returns plain dicts for the report.

    The drain runs on ``shards`` shards; each live rate on as many as it would need on AWS.
    """
    from backend.emulator import start_emulator, stop_emulator, wait_until_ready

    port = 4599
    base = stream_settings(root, "emulator", port, shards)
    emulator = start_emulator(base)
    try:
        wait_until_ready(base, timeout=30)
        log(f"drain: {drain:,} queued events")
        drained = measure_drain(stream_settings(root, "drain", port, shards), drain, log)
        log(f"  {drained.steady_rate:,.0f} events/s over {drained.batches} batches")
        live = []
        for rate in rates:
            log(f"live: {rate:,.0f} events/s for {seconds:.0f} s")
            settings = stream_settings(root, f"live-{int(rate)}", port, shards_for(rate))
            result = measure_live(settings, rate, seconds, log)
            log(
                f"  sent {result.sent_rate:,.0f}/s, committed {result.committed_rate:,.0f}/s, "
                f"freshness p50 {result.p50} p95 {result.p95}, backlog {result.backlog_seconds} s"
            )
            live.append(result)
    finally:
        stop_emulator(emulator)
    return {
        "drain": {**asdict(drained), "shards": shards},
        "live": [{**asdict(r), "shards": shards_for(r.offered_rate)} for r in live],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drain", type=int, default=400_000)
    parser.add_argument("--rates", default="200,1000,5000,10000")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--output", type=output_file, help="write the figures as JSON here")
    parser.add_argument("--keep", type=Path, help="work (and leave logs and lakes) here")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r]
    parent = args.keep or Path(tempfile.mkdtemp(prefix="telcopulse-bench-"))
    try:
        figures = run(
            parent,
            drain=args.drain,
            rates=rates,
            seconds=args.seconds,
            shards=args.shards,
            log=lambda m: print(m, file=sys.stderr, flush=True),
        )
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)
    text = json.dumps(figures, indent=1, default=str)
    if args.output:
        args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
