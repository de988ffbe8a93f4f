"""Command line (all layers): ``telcopulse emulator|produce|stream|kpi|dashboard|up|reset|status``
and, for AWS, ``telcopulse deploy|destroy``.

Every error a user can cause prints one line that says what to do, never a traceback, and
exits 2; a bad option or argument too (argparse's exit code, without its usage block).

Why one module of about 460 lines: it is the parser plus one short function per command,
each only wiring settings to the module that does the work (producer, stream job, kpis,
status, deploy). Reading it top to bottom is the CLI's reference; the work lives elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from backend.settings import Settings, SettingsError, load_settings
from glue_job.contract import H3_RESOLUTIONS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KPI_QUERIES = {"signal": "kpi_signal", "precision": "kpi_precision", "status": "kpi_status"}
# Coverage cells (H3), per cell at one resolution (backend.map_data.query_cells).
CELLS = "cells"


class UsageError(ValueError):
    """Bad input on the command line; the message says what to do."""


class CommandError(RuntimeError):
    """A command cannot go on (deploy, destroy); the message says what to do."""


def parse_instant(text: str) -> datetime:
    """ISO-8601 date or date-time; without an offset it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"not an ISO-8601 time: {text!r} (try 2026-11-28T10:00:00Z or 2026-11-28)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"not a date: {text!r} (use YYYY-MM-DD)") from None


def stop_on_sigterm() -> None:
    """Let `kill` stop a command the way Ctrl-C does, so it can finish cleanly."""

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def require_java() -> None:
    if shutil.which("java") is None:
        raise UsageError(
            "the stream job needs Java 17 or newer: install it "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless) and retry"
        )


# -- commands -------------------------------------------------------------------------------


def cmd_emulator(settings: Settings, args: argparse.Namespace) -> int:
    from backend.emulator import run_emulator

    return run_emulator(settings) or 0


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from backend.producer import produce

    stop_on_sigterm()
    replay_date = parse_day(args.date) if args.date else None
    stats = produce(
        settings,
        file=Path(args.file) if args.file else None,
        replay_date=replay_date,
        rate=args.rate,
        count=args.count,
        seed=args.seed,
        invalid_rate=args.invalid_rate,
    )
    print(f"sent {stats.sent} records in {stats.seconds:.1f}s", file=sys.stderr)
    return 0


def cmd_stream(settings: Settings, args: argparse.Namespace) -> int:
    require_java()
    from backend.kinesis import ensure_stream, kinesis_client
    from backend.stack import recording_pid, stream_pid_path
    from glue_job.local_entry import run_stream

    client = kinesis_client(settings)
    try:
        ensure_stream(client, settings.stream_name, settings.shards)
    except Exception as exc:  # noqa: BLE001 - any failure here means the endpoint is unusable
        raise UsageError(
            f"cannot reach Kinesis at {settings.endpoint_url or 'AWS'} ({type(exc).__name__}); "
            "start the emulator with `telcopulse emulator` or check TELCOPULSE_KINESIS_ENDPOINT"
        ) from None
    credentials = {"access_key": "local", "secret_key": "local"} if settings.mode == "local" else {}
    with recording_pid(stream_pid_path(settings)):  # `telcopulse status` reads it
        return run_stream(
            lake_root=settings.lake,
            checkpoint=settings.checkpoint_dir,
            stream_name=settings.stream_name,
            endpoint_url=settings.endpoint_url,
            region=settings.region,
            trigger_seconds=args.trigger or settings.trigger_seconds,
            until_idle=args.until_idle,
            max_records_per_shard=settings.max_records_per_shard,
            dedup_horizon_hours=settings.dedup_horizon_hours,
            compact_after_batches=settings.compact_after_batches,
            compaction_grace_seconds=settings.compaction_grace_seconds,
            failure_log=settings.stream_failure_log,
            **credentials,
        )


def cmd_kpi(settings: Settings, args: argparse.Namespace) -> int:
    from backend.engine import make_engine
    from backend.queries import BEGINNING, END_OF_TIME, Window, run_kpi

    window = Window(
        since=parse_instant(args.since) if args.since else BEGINNING,
        until=parse_instant(args.until) if args.until else END_OF_TIME,
    )
    if window.since >= window.until:
        raise UsageError("--since must be earlier than --until")
    engine = make_engine(settings)
    if args.kpi == CELLS:
        from backend.map_data import query_cells
        from backend.queries import committed_batch

        frame = query_cells(engine, committed_batch(engine), window, args.resolution)
    else:
        frame = run_kpi(engine, KPI_QUERIES[args.kpi], window)
    # The CLI's output columns are a public format (README): ``samples`` is the readings
    # count behind the average, ``status`` the label.
    frame = frame.rename(
        columns={
            "status_label": "status",
            "signal_samples": "samples",
            "precision_samples": "samples",
        }
    )
    print(format_frame(frame, args.format), end="")
    return 0


def format_frame(frame, fmt: str) -> str:
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return json.dumps(json.loads(frame.to_json(orient="records")), indent=2) + "\n"
    if frame.empty:
        return "(no data yet: is the stream job running and the producer sending?)\n"
    return frame.to_string(index=False, float_format=lambda v: f"{v:.2f}") + "\n"


def cmd_dashboard(settings: Settings, args: argparse.Namespace) -> int:
    # Become Streamlit rather than wait for it: one process less to stop, and no idle
    # Python interpreter holding memory beside the dashboard.
    command = dashboard_command(settings)
    os.chdir(PROJECT_ROOT)
    os.execv(command[0], command)  # noqa: S606 - our own interpreter, an argument list
    return 0  # pragma: no cover - execv does not return


def dashboard_command(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PROJECT_ROOT / "Home.py"),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(settings.dashboard_port),
        "--browser.gatherUsageStats",
        "false",
    ]


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    require_java()
    from backend.stack import run_stack

    return run_stack(settings, rate=args.rate, invalid_rate=args.invalid_rate)


def cmd_reset(settings: Settings, args: argparse.Namespace) -> int:
    targets = [Path(settings.lake), Path(settings.checkpoint_dir)]
    if args.stream:
        targets.append(settings.emulator_dir)
    if not args.yes:
        raise UsageError(
            "this deletes " + ", ".join(str(t) for t in targets) + ": add --yes to confirm"
        )
    for target in targets:
        shutil.rmtree(target, ignore_errors=True)
        print(f"removed {target}", file=sys.stderr)
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from backend.status import collect_status, format_status, status_json

    checks = collect_status(settings)
    render = status_json if args.format == "json" else format_status
    print(render(settings, checks), end="")
    return 0 if all(check.ok for check in checks) else 1


@contextmanager
def deploy_tooling() -> Iterator[ModuleType]:
    """The deploy tooling (``telcopulse_deploy.deploy``), imported by the two commands that
    use it and by nothing else; its errors, and AWS's refusals, end as one line."""
    try:
        from telcopulse_deploy import deploy as tooling
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("telcopulse_deploy"):
            raise
        raise CommandError(
            "this installation has no deploy tooling (telcopulse_deploy): run deploy and "
            "destroy where TelcoPulse is installed from its checkout (pip install -e .)"
        ) from None
    try:
        with tooling.aws_errors():
            yield tooling
    except tooling.DeployError as exc:
        raise CommandError(str(exc)) from None


def cmd_deploy(settings: Settings, args: argparse.Namespace) -> int:
    with deploy_tooling() as tooling:
        parameters = dict(parse_parameter(text) for text in args.parameter or [])
        for name, option in tooling.PARAMETER_OPTIONS.items():
            value = getattr(args, option.removeprefix("--").replace("-", "_"))
            if value is not None:
                parameters[name] = value
        result = tooling.deploy(
            settings,
            parameters=parameters,
            template=Path(args.template) if args.template else None,
            bootstrap_template=Path(args.bootstrap_template) if args.bootstrap_template else None,
            with_image=not args.skip_image,
            job_timeout=args.job_timeout or tooling.JOB_START_TIMEOUT,
        )
        print(tooling.format_summary(result, settings), end="")
    return 0


def parse_parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise UsageError(
            f"--parameter takes NAME=VALUE, not {text!r} (e.g. StreamMode=PROVISIONED)"
        )
    return name.strip(), value


def cmd_destroy(settings: Settings, args: argparse.Namespace) -> int:
    with deploy_tooling() as tooling:
        names = tooling.destroy(settings, yes=args.yes)
    print(f"deleted {', '.join(names)}", file=sys.stderr)
    return 0


# -- parser ---------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse's checks and exit code 2, with its error on one line like every other error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="telcopulse",
        description="Real-time mobile network-quality analytics (local stack by default).",
    )
    parser.add_argument(
        "--home", help="data directory (env TELCOPULSE_HOME, default ./.telcopulse)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("emulator", help="run the local Kinesis emulator in the foreground")

    produce = sub.add_parser("produce", help="send events to the stream (synthetic or replayed)")
    produce.add_argument("--file", help="replay a mobile-logs .csv or a contract .jsonl file")
    produce.add_argument(
        "--date", help="event date for a .csv replay (YYYY-MM-DD, default yesterday UTC)"
    )
    produce.add_argument("--rate", type=_positive_float, help="events per second (default: max)")
    produce.add_argument("--count", type=_positive_int, help="stop after N events")
    produce.add_argument("--seed", type=int, help="random seed for synthetic events")
    produce.add_argument(
        "--invalid-rate",
        type=_share,
        default=0.0,
        help="share of deliberately bad synthetic records, 0-1 (default 0)",
    )

    stream = sub.add_parser("stream", help="run the Spark stream job (bronze/silver/gold)")
    stream.add_argument("--trigger", type=_positive_float, help="batch interval in seconds (2)")
    stream.add_argument(
        "--until-idle", action="store_true", help="process everything on the stream, then exit"
    )

    kpi = sub.add_parser("kpi", help="print a KPI from gold")
    kpi.add_argument("kpi", choices=sorted([*KPI_QUERIES, CELLS]))
    kpi.add_argument(
        "--resolution",
        type=int,
        choices=H3_RESOLUTIONS,
        default=min(H3_RESOLUTIONS),
        help="cells only: the H3 resolution (8: about 1 km across, 6: about 6 km)",
    )
    kpi.add_argument("--since", help="ISO time, inclusive (one-minute buckets)")
    kpi.add_argument("--until", help="ISO time, exclusive (one-minute buckets)")
    kpi.add_argument("--format", choices=["table", "csv", "json"], default="table")

    sub.add_parser("dashboard", help="run the Streamlit dashboard")

    up = sub.add_parser("up", help="run emulator, stream job, producer and dashboard together")
    up.add_argument("--rate", type=_positive_float, default=200.0, help="events/s (200)")
    up.add_argument(
        "--invalid-rate", type=_share, default=0.002, help="share of bad records (0.002)"
    )

    reset = sub.add_parser("reset", help="delete the local lake and checkpoint")
    reset.add_argument("--stream", action="store_true", help="also delete the emulator's data")
    reset.add_argument("--yes", action="store_true", help="confirm")

    deploy = sub.add_parser(
        "deploy", help="create or update the AWS stack, upload the Glue job, push the image"
    )
    deploy.add_argument("--vpc-id", help="VPC for the load balancer and dashboard (first deploy)")
    deploy.add_argument(
        "--alb-subnets",
        help="comma-separated subnets in 2+ AZs for the load balancer (first deploy)",
    )
    deploy.add_argument(
        "--service-subnets", help="comma-separated subnets for the dashboard tasks (first deploy)"
    )
    deploy.add_argument(
        "--allowed-cidr", help="the only network that may open the dashboard, e.g. 203.0.113.0/24"
    )
    deploy.add_argument("--certificate-arn", help="ACM certificate for HTTPS (recommended)")
    deploy.add_argument(
        "--parameter",
        action="append",
        metavar="NAME=VALUE",
        help="any other template parameter, e.g. StreamMode=PROVISIONED (repeatable)",
    )
    deploy.add_argument(
        "--skip-image", action="store_true", help="do not build or push the dashboard image"
    )
    deploy.add_argument(
        "--template", help="CloudFormation template (default: infra/telcopulse.yaml, installed)"
    )
    deploy.add_argument(
        "--bootstrap-template",
        help="template of the bootstrap stack (default: infra/bootstrap.yaml, installed)",
    )
    deploy.add_argument(
        "--job-timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="how long to wait for the stream job's run to be RUNNING (default 600)",
    )

    destroy = sub.add_parser(
        "destroy",
        help="stop the stream job, detach the producer policy, empty the stack's buckets and "
        "delete the AWS stack",
    )
    destroy.add_argument("--yes", action="store_true", help="confirm")

    status = sub.add_parser(
        "status",
        help="stream, stream job, newest batch and its quarantine (exit 1 when one is down)",
    )
    status.add_argument("--format", choices=["text", "json"], default="text")
    return parser


def _positive(convert: Callable[[str], float], noun: str) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text, which must name a number above 0."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0: {text}")
        return value

    return parse


_positive_float = _positive(float, "a number")
_positive_int = _positive(int, "a whole number")


def _share(text: str) -> float:
    value = _positive_float(text) if text not in {"0", "0.0"} else 0.0
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


COMMANDS = {
    "emulator": cmd_emulator,
    "produce": cmd_produce,
    "stream": cmd_stream,
    "kpi": cmd_kpi,
    "dashboard": cmd_dashboard,
    "up": cmd_up,
    "reset": cmd_reset,
    "deploy": cmd_deploy,
    "destroy": cmd_destroy,
    "status": cmd_status,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from backend.errors import QueryError
    from glue_job.errors import JobError

    try:
        settings = load_settings(home=args.home)
        return COMMANDS[args.command](settings, args)
    except KeyboardInterrupt:
        return 130
    except (
        SettingsError,
        UsageError,
        QueryError,
        JobError,
        CommandError,
        OSError,
        ValueError,
    ) as exc:
        print(f"telcopulse: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
