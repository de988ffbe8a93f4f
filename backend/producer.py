"""Producer (ingest layer): puts records on the Kinesis stream from a CSV, JSON Lines or synthetic.

``produce`` picks the source and sends; ``send`` is the engine. Delivery is
at-least-once and never silently lossy:

- entries that PutRecords reports as failed are re-sent, alone and in their
  original order, with exponential backoff and full jitter, until they succeed;
- connection errors and throttling (emulator restarting, network blip) are
  retried the same way, forever, with a line on stderr while it lasts;
- a record over Kinesis's 1 MiB limit is still attempted, on its own so it cannot
  sink a batch; if the API rejects it, one stderr line names it and it is counted
  in ``SendStats.rejected`` (retrying could never succeed);
- Ctrl-C stops reading the source, flushes what was already taken, and returns. It
  waits for a request in flight (``_requests_finish``): interrupted inside one, the
  producer could not know whether Kinesis had applied it, and would send it again.

A request that times out may have been applied, so a record can land twice; the
stream job deduplicates on ``event_id`` (a quarantined record is kept as often as it
arrives).

Why one module of about 520 lines: the sources, the rate limiter, the progress line and the
sender are one delivery loop whose guarantees (order, retries, the 1 MiB rule, Ctrl-C) are
stated above and tested together in ``tests/backend/test_producer.py``; split, each piece
would be a thin file that makes sense only beside the others.
"""

from __future__ import annotations

import hashlib
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import TextIO

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from backend.kinesis import ensure_stream, kinesis_client
from backend.replay import REQUIRED_CSV_COLUMNS, events_from_csv, events_from_jsonl, read_csv_header
from backend.settings import Settings
from backend.synthetic import SyntheticGenerator

__all__ = [
    "ProducerError",
    "SendStats",
    "SyntheticGenerator",
    "events_from_csv",
    "events_from_jsonl",
    "partition_key",
    "produce",
    "send",
]

# Kinesis PutRecords limits; a record's size counts its data and its partition key.
MAX_BATCH_RECORDS = 500
MAX_RECORD_BYTES = 1024 * 1024
MAX_REQUEST_BYTES = 5 * 1024 * 1024
# A paced trickle must not sit in a half-full batch: the dashboard wants it now.
LINGER_SECONDS = 0.2
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 5.0
NOTE_EVERY_SECONDS = 10.0

# EndpointConnectionError and ConnectTimeoutError derive from botocore's ConnectionError.
CONNECTION_ERRORS = (BotoConnectionError, ConnectionClosedError, ReadTimeoutError)
RETRYABLE_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "KMSThrottlingException",
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
CSV_SUFFIXES = frozenset({".csv"})
JSONL_SUFFIXES = frozenset({".jsonl", ".json"})


class ProducerError(ValueError):
    """Bad producer input or an unusable stream; the message says what to do."""


# The signals that stop a producer (Ctrl-C, and `kill` through the CLI's SIGTERM handler).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _requests_finish() -> Iterator[None]:
    """Hold a stop signal that arrives in the block until the block ends, then deliver it
    to the handler it would have reached.

    Python runs a signal's handler between any two bytecodes, so a KeyboardInterrupt could
    surface inside ``put_records`` after Kinesis applied the records, or between counting
    them and dropping them from the batch: the flush that Ctrl-C runs would then send them
    again (a quarantined record lands twice) or count them twice. Only the main thread
    receives signals, and only it can set handlers, so elsewhere the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    # (None: a handler not set from Python, which Python cannot put back; left alone.)
    previous = {sig: h for sig in STOP_SIGNALS if (h := signal.getsignal(sig)) is not None}
    for sig in previous:
        signal.signal(sig, lambda signum, _frame: held.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in held:
            signal.raise_signal(signum)


@dataclass
class SendStats:
    """What ``send`` did. ``sent + rejected`` equals the records taken from the source."""

    sent: int = 0
    failed_retries: int = 0  # entries re-sent because PutRecords reported them failed
    connection_retries: int = 0  # requests repeated after a connection error or throttling
    rejected: int = 0  # records Kinesis refused outright (over 1 MiB); each named on stderr
    seconds: float = 0.0
    interrupted: bool = False  # stopped by Ctrl-C (after flushing)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def partition_key(data: bytes) -> str:
    """A hash of the record: spreads records evenly over shards, and a replay hits the same one."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def send(
    client,
    stream_name: str,
    records: Iterable[bytes],
    *,
    rate: float | None = None,
    count: int | None = None,
    progress: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    seed: int | None = None,
) -> SendStats:
    """Put ``records`` on ``stream_name`` with PutRecords; see the module docstring for guarantees.

    ``rate`` is a target in records per second (None: as fast as possible), ``count``
    stops after that many records, ``progress`` receives status lines (default
    stderr). ``clock``, ``sleep`` and ``seed`` (backoff jitter) are injectable for tests.
    """
    if rate is not None and not rate > 0:
        raise ProducerError(f"rate must be a positive number of records per second, got {rate}")
    if count is not None and count < 0:
        raise ProducerError(f"count must be zero or more, got {count}")
    sender = _Sender(
        client,
        stream_name,
        rate=rate,
        progress=_Progress(sys.stderr if progress is None else progress, clock),
        clock=clock,
        sleep=sleep,
        rng=random.Random(seed),  # noqa: S311 - backoff jitter, not security
    )
    source: Iterator[bytes] = iter(records) if count is None else islice(records, count)
    return sender.run(source)


def produce(
    settings: Settings,
    *,
    file: str | Path | None = None,
    replay_date: date | str | None = None,
    rate: float | None = None,
    count: int | None = None,
    seed: int | None = None,
    invalid_rate: float = 0.0,
    progress: TextIO | None = None,
) -> SendStats:
    """``telcopulse produce``: pick the source, make sure the stream exists, send.

    ``file`` ending in .csv is replayed as mobile-logs.csv rows with event times on
    ``replay_date`` (default: yesterday, UTC, so no replayed event lies in the
    future); .jsonl/.json is sent line by line; no file means synthetic events
    (``seed``, ``invalid_rate``). Bad input raises ``ProducerError`` before anything
    is sent.
    """
    records = open_source(file=file, replay_date=replay_date, seed=seed, invalid_rate=invalid_rate)
    client = kinesis_client(settings)
    try:
        ensure_stream(client, settings.stream_name, settings.shards)
    except CONNECTION_ERRORS:
        where = settings.endpoint_url or f"AWS Kinesis in {settings.region}"
        hint = (
            "start it with `telcopulse emulator` (or `make up`)"
            if settings.mode == "local"
            else "check your network, AWS credentials and TELCOPULSE_REGION"
        )
        raise ProducerError(f"cannot reach {where}: {hint}") from None
    return send(client, settings.stream_name, records, rate=rate, count=count, progress=progress)


def open_source(
    *,
    file: str | Path | None = None,
    replay_date: date | str | None = None,
    seed: int | None = None,
    invalid_rate: float = 0.0,
) -> Iterator[bytes]:
    """The record source ``produce`` would send, after checking the user's choices."""
    if file is None:
        if replay_date is not None:
            raise ProducerError("a replay date only applies to a .csv file: pass --file too")
        if not 0.0 <= invalid_rate <= 1.0:
            raise ProducerError(f"invalid rate must be between 0 and 1, got {invalid_rate}")
        return iter(SyntheticGenerator(seed=seed, invalid_rate=invalid_rate))
    if seed is not None or invalid_rate:
        raise ProducerError("seed and invalid rate only apply to synthetic data: drop --file")
    path = Path(file)
    if not path.is_file():
        raise ProducerError(f"no such file: {path} (pass a .csv or .jsonl file)")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        day = _parse_replay_date(replay_date)
        missing = [name for name in REQUIRED_CSV_COLUMNS if name not in _readable_header(path)]
        if missing:
            raise ProducerError(
                f"{path} is not in mobile-logs.csv format: no {', '.join(missing)} column "
                "(see shared/data/README.md, or send JSON Lines as a .jsonl file)"
            )
        return events_from_csv(path, day)
    if replay_date is not None:
        raise ProducerError("a replay date only applies to a .csv file")
    if suffix in JSONL_SUFFIXES:
        return events_from_jsonl(path)
    raise ProducerError(
        f"cannot tell the format of {path.name}: name it .csv (mobile-logs rows) "
        "or .jsonl (one JSON event per line)"
    )


def _readable_header(path: Path) -> list[str]:
    try:
        return read_csv_header(path)
    except OSError as exc:
        raise ProducerError(f"cannot read {path}: {exc.strerror}") from None


def _parse_replay_date(value: date | str | None) -> date:
    if value is None:
        return datetime.now(UTC).date() - timedelta(days=1)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ProducerError(f"bad replay date {value!r}: use YYYY-MM-DD") from None


class _TokenBucket:
    """Pacing to a target rate. Half a second of burst lets the sender catch up after a
    slow request instead of falling permanently behind the target."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * 0.5)
        self.tokens = 1.0
        self.clock = clock
        self.last = clock()

    def reserve(self) -> float:
        """Take one token; return how long to wait before using it."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class _Progress:
    """Status lines: rewritten in place on a terminal, one every few seconds in a log."""

    def __init__(self, stream: TextIO, clock: Callable[[], float]) -> None:
        self.stream = stream
        self.clock = clock
        self.tty = _is_tty(stream)
        self.interval = 0.5 if self.tty else 5.0
        self.start = clock()
        self.last = self.start
        self.open_line = False  # a \r line is on screen and has no newline yet

    def tick(self, stats: SendStats) -> None:
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self._status(stats, now)

    def note(self, message: str) -> None:
        self._end_open_line()
        print(message, file=self.stream, flush=True)

    def finish(self, stats: SendStats) -> None:
        self._status(stats, self.clock())
        self._end_open_line()

    def _status(self, stats: SendStats, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        line = f"sent {stats.sent:,} records in {elapsed:.1f}s ({stats.sent / elapsed:,.0f}/s)"
        if stats.failed_retries:
            line += f", {stats.failed_retries:,} re-sent after failures"
        if stats.connection_retries:
            line += f", {stats.connection_retries:,} requests retried"
        if stats.rejected:
            line += f", {stats.rejected:,} rejected"
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
            self.open_line = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _end_open_line(self) -> None:
        if self.open_line:
            self.stream.write("\n")
            self.open_line = False


class _Sender:
    """Batches, paces and retries; the batch only shrinks once Kinesis has acknowledged it."""

    def __init__(
        self,
        client,
        stream_name: str,
        *,
        rate: float | None,
        progress: _Progress,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        rng: random.Random,
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.pacer = _TokenBucket(rate, clock) if rate else None
        self.progress = progress
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.stats = SendStats()
        self.batch: list[tuple[bytes, str]] = []
        self.batch_bytes = 0
        self.batch_started = 0.0
        self.taken = 0
        self.outage_started: float | None = None
        self.last_note = -float("inf")

    def run(self, source: Iterator[bytes]) -> SendStats:
        start = self.clock()
        try:
            for data in source:
                self.take(data)
            self.flush()
        except KeyboardInterrupt:
            # Records already taken from the source are sent before returning; a second
            # Ctrl-C during this flush propagates.
            self.stats.interrupted = True
            self.flush()
        finally:
            self.stats.seconds = self.clock() - start
            self.progress.finish(self.stats)
        return self.stats

    def take(self, data: bytes) -> None:
        self.taken += 1
        if self.pacer is not None:
            wait = self.pacer.reserve()
            if wait > 0:
                deadline = self.clock() + wait
                if self.batch and deadline - self.batch_started >= LINGER_SECONDS:
                    self.flush()
                remaining = deadline - self.clock()
                if remaining > 0:
                    self.sleep(remaining)
        key = partition_key(data)
        size = len(data) + len(key.encode())
        if size > MAX_RECORD_BYTES:
            self.flush()
            self.send_alone(data, key)
            return
        if len(self.batch) >= MAX_BATCH_RECORDS or self.batch_bytes + size > MAX_REQUEST_BYTES:
            self.flush()
        if not self.batch:
            self.batch_started = self.clock()
        self.batch.append((data, key))
        self.batch_bytes += size
        if (
            len(self.batch) >= MAX_BATCH_RECORDS
            or self.clock() - self.batch_started >= LINGER_SECONDS
        ):
            self.flush()
        self.progress.tick(self.stats)

    def send_alone(self, data: bytes, key: str) -> None:
        """Attempt an over-limit record by itself, so its rejection cannot fail a whole batch."""
        self.batch = [(data, key)]
        try:
            self.flush()
        except ClientError as exc:
            if _error_code(exc) != "ValidationException":
                raise
            self.batch, self.batch_bytes = [], 0
            self.stats.rejected += 1
            preview = data[:60].decode("utf-8", errors="replace")
            self.progress.note(
                f"rejected record #{self.taken}: {len(data):,} bytes is over Kinesis's 1 MiB "
                f"record limit (not retried; starts {preview!r})"
            )

    def flush(self) -> None:
        """Send the batch until every entry is acknowledged."""
        attempt = 0
        while self.batch:
            with _requests_finish():
                again = self._put_batch()
            if again:
                self._back_off(attempt)
                attempt += 1
        self.batch_bytes = 0

    def _put_batch(self) -> bool:
        """One PutRecords of the batch, counted; True when what is left of the batch goes
        again after a back-off (failed entries, an outage, throttling)."""
        try:
            response = self.client.put_records(
                StreamName=self.stream_name,
                Records=[{"Data": data, "PartitionKey": key} for data, key in self.batch],
            )
        except CONNECTION_ERRORS as exc:
            self.stats.connection_retries += 1
            self._note_outage(type(exc).__name__)
            return True
        except ClientError as exc:
            code = _error_code(exc)
            if code == "ResourceNotFoundException":
                raise ProducerError(
                    f"stream {self.stream_name} no longer exists ({len(self.batch)} records "
                    "unsent); was the emulator restarted without persistence? "
                    "Run produce again to recreate it"
                ) from None
            if code not in RETRYABLE_ERROR_CODES:
                raise
            self.stats.connection_retries += 1
            self._note_outage(code)
            return True
        self._end_outage()
        results = response["Records"]
        outcome = zip(self.batch, results, strict=True)
        failed = [entry for entry, result in outcome if result.get("ErrorCode")]
        self.stats.sent += len(self.batch) - len(failed)
        self.batch = failed
        if failed:
            self.stats.failed_retries += len(failed)
            codes = sorted({r["ErrorCode"] for r in results if r.get("ErrorCode")})
            self._note(f"{len(failed)} records failed ({', '.join(codes)}); re-sending")
        return bool(failed)

    def _back_off(self, attempt: int) -> None:
        # Full jitter: spreads retries of many producers instead of synchronising them.
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
        self.sleep(self.rng.uniform(0, ceiling))

    def _note_outage(self, reason: str) -> None:
        if self.outage_started is None:
            self.outage_started = self.clock()
        where = getattr(getattr(self.client, "meta", None), "endpoint_url", "the stream")
        self._note(
            f"cannot put records to {where} ({reason}); retrying with backoff, "
            f"{len(self.batch)} records held"
        )

    def _end_outage(self) -> None:
        if self.outage_started is not None:
            seconds = self.clock() - self.outage_started
            self.outage_started = None
            self.last_note = -float("inf")
            self._note(f"stream reachable again after {seconds:.1f}s; nothing was lost")

    def _note(self, message: str) -> None:
        """Rate-limited: a long outage reports itself, without flooding the terminal."""
        now = self.clock()
        if now - self.last_note >= NOTE_EVERY_SECONDS:
            self.last_note = now
            self.progress.note(message)


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
