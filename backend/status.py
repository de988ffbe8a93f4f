"""Status (operations): ``telcopulse status``, the pipeline's vital signs in a few lines.

The same four questions in local and aws mode, each answered on its own line:
- stream: does the Kinesis endpoint answer, and is the stream ACTIVE, with how many shards;
- job: aws mode: the stream job's newest Glue run (job name from the stack output
  ``GlueJobName``); local mode: whether a ``telcopulse stream`` process is alive (its pid
  file, ``backend.stack.stream_pid_path``);
- batch: the newest committed micro-batch and its age, from ``_ops`` through the query engine
  the settings pick (DuckDB locally, Athena in AWS);
- quarantine: how many records that batch quarantined.

Every check is a probe: it never raises, it says what it could not learn. A line is "down"
when the answer means data is not flowing (stream unreachable, job not running, nothing
committed); ``telcopulse status`` then exits 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from backend.settings import Settings

# Seconds a probe waits for Kinesis, CloudFormation or Glue to answer.
PROBE_TIMEOUT = 3.0


@dataclass(frozen=True)
class Check:
    """One line of the status: ``text`` says what was found, or why it is down."""

    name: str
    ok: bool
    text: str
    facts: dict[str, object] = field(default_factory=dict)


def collect_status(
    settings: Settings, *, session=None, engine=None, now: datetime | None = None
) -> list[Check]:
    """Every check, in display order. ``session`` (boto3, aws mode) and ``engine`` default to
    what the settings choose."""
    moment = now or datetime.now(UTC)
    checks = [check_stream(settings)]
    if settings.mode == "aws":
        checks.append(check_glue_job(settings, session=session))
    else:
        checks.append(check_local_job(settings))
    checks += check_batch(settings, engine=engine, now=moment)
    return checks


# -- stream ---------------------------------------------------------------------------------


def check_stream(settings: Settings) -> Check:
    from backend.kinesis import check_stream as describe
    from backend.kinesis import stream_client

    found = describe(stream_client(settings, timeout=PROBE_TIMEOUT), settings)
    facts = {
        "name": found.stream_name,
        "endpoint": found.endpoint,
        "status": found.status,
        "shards": found.open_shards,
    }
    where = f"{found.stream_name} at {found.endpoint}"
    if not found.answers:
        return Check("stream", False, f"{where}: not reachable: {found.detail}", facts)
    if found.status is None:
        return Check("stream", False, f"{where}: {found.detail}", facts)
    shards = f"{found.open_shards} open shard{'' if found.open_shards == 1 else 's'}"
    ok = found.status in {"ACTIVE", "UPDATING"}  # UPDATING (resharding) still takes records
    return Check("stream", ok, f"{where}: {found.status}, {shards}", facts)


# -- stream job -----------------------------------------------------------------------------


def check_local_job(settings: Settings) -> Check:
    from backend.stack import running_pid, stream_pid_path

    path = stream_pid_path(settings)
    pid = running_pid(path)
    facts: dict[str, object] = {"pid_file": str(path), "pid": pid, "running": pid is not None}
    if pid is not None:
        return Check("job", True, f"local stream job running (pid {pid})", facts)
    why = "its pid file is stale" if path.exists() else "no local stream job"
    return Check(
        "job",
        False,
        f"not running: {why} (start it: `telcopulse stream`, or `telcopulse up`)",
        facts,
    )


def check_glue_job(settings: Settings, *, session=None) -> Check:
    from botocore.config import Config

    from backend.aws_stack import describe_stack, job_runs, stack_outputs

    config = Config(
        connect_timeout=PROBE_TIMEOUT, read_timeout=PROBE_TIMEOUT, retries={"max_attempts": 2}
    )
    facts: dict[str, object] = {"stack": settings.stack_name}
    try:
        if session is None:
            import boto3

            session = boto3.session.Session(region_name=settings.region)
        stack = describe_stack(session.client("cloudformation", config=config), settings.stack_name)
        if stack is None:
            return Check(
                "job",
                False,
                f"unknown: no stack {settings.stack_name} in {settings.region} "
                "(`telcopulse deploy` creates it; TELCOPULSE_STACK_NAME names another)",
                facts,
            )
        job = stack_outputs(stack).get("GlueJobName")
        if job is None:
            return Check(
                "job",
                False,
                f"unknown: stack {settings.stack_name} has no GlueJobName output",
                facts,
            )
        facts["job"] = job
        runs = job_runs(session.client("glue", config=config), job)
    except Exception as exc:  # noqa: BLE001 - a probe: no credentials, refused, unreachable
        return Check("job", False, f"unknown: {_one_line(exc)}", facts)
    if not runs:
        return Check("job", False, f"{job} has never run (`telcopulse deploy` starts it)", facts)
    run = runs[0]
    facts |= {
        "run_id": run.run_id,
        "state": run.state,
        "started_on": _iso(run.started_on),
        "error": run.error or None,
    }
    text = f"{job} run {run.run_id} {run.state}"
    if run.started_on is not None:
        text += f", started {_iso(run.started_on)}"
    if run.error:
        text += f": {run.error}"
    return Check("job", run.state == "RUNNING", text, facts)


# -- batches --------------------------------------------------------------------------------


def check_batch(settings: Settings, *, engine=None, now: datetime) -> list[Check]:
    """The newest committed batch and its quarantine count (two lines, one query result)."""
    from backend.frames import as_int, as_utc, first_row
    from backend.queries import committed_batch, run_query

    try:
        if engine is None:
            from backend.engine import make_engine

            engine = make_engine(settings)
        batch = committed_batch(engine)
        row = first_row(run_query(engine, "status_batch", batch=batch)) if batch >= 0 else {}
    except Exception as exc:  # noqa: BLE001 - a probe: the engine's error, in one line
        reason = f"unknown: query failed: {_one_line(exc)}"
        return [Check("batch", False, reason), Check("quarantine", False, reason)]
    if not row:
        return [
            Check("batch", False, "none committed yet (is the stream job running?)", {}),
            Check("quarantine", True, "no batch yet", {}),
        ]
    committed = as_utc(row.get("batch_end"))
    age = None if committed is None else max(0.0, (now - committed).total_seconds())
    batch_id, read = as_int(row.get("batch_id")), as_int(row.get("records_read"))
    quarantined = as_int(row.get("quarantine_rows"))
    batch_facts = {
        "batch_id": batch_id,
        "committed_at": _iso(committed),
        "age_seconds": None if age is None else round(age, 1),
        "records_read": read,
    }
    when = "" if age is None else f" {format_age(age)} ago ({_iso(committed)})"
    return [
        Check("batch", True, f"{batch_id} committed{when}, {read:,} records read", batch_facts),
        Check(
            "quarantine",
            True,
            f"{quarantined:,} of {read:,} records in batch {batch_id}",
            {"batch_id": batch_id, "quarantined": quarantined, "records_read": read},
        ),
    ]


# -- output ---------------------------------------------------------------------------------


def format_status(settings: Settings, checks: list[Check]) -> str:
    """An aligned block: one line per check, the mode first."""
    rows = [("mode", _mode_text(settings)), *((c.name, c.text) for c in checks)]
    width = max(len(name) for name, _ in rows) + 2
    return "".join(f"{name.ljust(width)}{text}\n" for name, text in rows)


def status_json(settings: Settings, checks: list[Check]) -> str:
    document: dict[str, object] = {"mode": settings.mode, "ok": all(c.ok for c in checks)}
    for check in checks:
        document[check.name] = {"ok": check.ok, "text": check.text, **check.facts}
    return json.dumps(document, indent=2) + "\n"


def _mode_text(settings: Settings) -> str:
    if settings.mode == "aws":
        return f"aws (stack {settings.stack_name}, {settings.region}, lake {settings.lake})"
    return f"local (lake {settings.lake})"


def format_age(seconds: float) -> str:
    """12s, 3m 05s, 2h 14m, 3d 4h."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
