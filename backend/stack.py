"""Local stack (all layers): ``telcopulse up`` runs emulator, stream job, producer and dashboard.

Each component is a child process in its own session, so Ctrl-C reaches only this
supervisor, which then stops them in a safe order: producer first, then the
stream job (between triggers), the dashboard, and the emulator last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from backend.emulator import die_with_parent
from backend.settings import Settings
from glue_job.spark_conf import NATIVE_MEMORY_ENV

STOP_TIMEOUT = 60.0
# Once a child has stopped, the processes it started have this long to go too.
GROUP_GRACE = 10.0
# A stream job that dies (killed, out of memory) is started again: it resumes from its
# checkpoint, exactly once. One that dies this often this fast is broken: stop instead.
STREAM_RESTARTS = 3
STREAM_RESTART_WINDOW = 300.0


class RestartBudget:
    """Whether a child that died may be started again: at most ``limit`` times a window."""

    def __init__(
        self,
        limit: int = STREAM_RESTARTS,
        window: float = STREAM_RESTART_WINDOW,
        clock=time.monotonic,
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.restarts: list[float] = []

    def allow(self) -> bool:
        now = self.clock()
        self.restarts = [t for t in self.restarts if now - t < self.window]
        if len(self.restarts) >= self.limit:
            return False
        self.restarts.append(now)
        return True


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "backend.cli", *args]


def _spawn(name: str, command: list[str], settings: Settings, logs: Path) -> Child:
    log = logs / f"{name}.log"
    env = {
        **NATIVE_MEMORY_ENV,  # glue_job.spark_conf: bounded malloc arenas; the user's value wins
        **os.environ,
        "TELCOPULSE_HOME": str(settings.home.resolve()),
        "PYTHONUNBUFFERED": "1",
    }
    with open(log, "ab") as handle:
        process = subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            # Even a `kill -9` of this supervisor must not leave orphans running.
            preexec_fn=die_with_parent(),  # noqa: PLW1509 - only calls prctl before exec
            cwd=Path(__file__).resolve().parent.parent,
        )
    return Child(name, process, log)


def dashboard_ready(port: int) -> bool:
    """Whether Streamlit on ``port`` answers its health check (or whatever relays it)."""
    try:
        url = f"http://127.0.0.1:{port}/_stcore/health"
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _wait(predicate, timeout: float, children: list[Child]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if any(c.process.poll() is not None for c in children):
            return False
        time.sleep(0.25)
    return False


def _stop(child: Child, sig: int = signal.SIGTERM) -> None:
    """Ask the child itself to stop, then clear what is left of its process group.

    Only the child hears ``sig``: each command stops what it started (the stream job stops
    its query between batches and then Spark, whose JVM exits with it; the emulator command
    stops kinesalite). Signalling the whole group took the stream job's JVM down under its
    driver, which then failed its own clean stop with "Connection refused".
    """
    # SIGTERM, not SIGINT: a shell may start us with SIGINT ignored, and children inherit that.
    if child.process.poll() is None:
        child.process.send_signal(sig)
        with suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=STOP_TIMEOUT)
    _clear_group(child.process)


def _clear_group(leader: subprocess.Popen) -> None:
    """Kill whatever is left in ``leader``'s process group: the leader itself at once if it
    is still running, a process it started once ``GROUP_GRACE`` has not seen it go."""
    deadline = time.monotonic() + (GROUP_GRACE if leader.poll() is not None else 0)
    try:
        while time.monotonic() < deadline:
            os.killpg(leader.pid, 0)  # signal 0: only asks whether the group has a process left
            time.sleep(0.1)
        os.killpg(leader.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    leader.wait()


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def run_stack(settings: Settings, *, rate: float = 200.0, invalid_rate: float = 0.0) -> int:
    from backend.emulator import endpoint_answers
    from backend.kinesis import ensure_stream, kinesis_client

    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill <pid>` stops the stack as Ctrl-C does
    say = lambda message: print(f"telcopulse up: {message}", flush=True)  # noqa: E731
    children: list[Child] = []
    try:
        if endpoint_answers(settings):
            say(f"reusing the Kinesis endpoint already answering at {settings.endpoint_url}")
        else:
            children.append(_spawn("emulator", _cli("emulator"), settings, logs))
            if not _wait(lambda: endpoint_answers(settings), 30, children):
                say(f"the Kinesis emulator did not start; see {children[0].log}")
                return 1
        ensure_stream(kinesis_client(settings), settings.stream_name, settings.shards)

        children.append(_spawn("stream", _cli("stream"), settings, logs))
        producer_args = ["produce", "--rate", f"{rate:g}"]
        if invalid_rate:
            producer_args += ["--invalid-rate", f"{invalid_rate:g}"]
        children.append(_spawn("producer", _cli(*producer_args), settings, logs))
        children.append(_spawn("dashboard", _cli("dashboard"), settings, logs))

        if not _wait(lambda: dashboard_ready(settings.dashboard_port), 60, children):
            failed = [c for c in children if c.process.poll() is not None]
            culprit = failed[0] if failed else children[-1]
            say(f"{culprit.name} failed to start; see {culprit.log}")
            return 1
        say(f"dashboard   http://localhost:{settings.dashboard_port}")
        say(f"producer    {rate:g} synthetic events/s into stream '{settings.stream_name}'")
        say(f"lake        {settings.lake}")
        say(f"logs        {logs}/{{emulator,stream,producer,dashboard}}.log")
        say("try         telcopulse kpi signal   (in another shell)")
        say("Ctrl-C stops everything")
        budget = RestartBudget()
        while True:
            for child in list(children):
                code = child.process.poll()
                if code is None:
                    continue
                if child.name == "producer":
                    # Stopping the producer is how you watch freshness turn: keep the rest up.
                    say(f"producer exited with code {code}; the rest keeps running ({child.log})")
                    children.remove(child)
                    continue
                if child.name == "stream" and budget.allow():
                    say(
                        f"stream exited with code {code}; starting it again: it resumes from "
                        f"its checkpoint, each event counted once ({child.log})"
                    )
                    children[children.index(child)] = _spawn(
                        "stream", _cli("stream"), settings, logs
                    )
                    continue
                say(f"{child.name} exited with code {code}; see {child.log}. Stopping.")
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping…")
        return 0
    finally:
        order = {"producer": 0, "stream": 1, "dashboard": 2, "emulator": 3}
        for child in sorted(children, key=lambda c: order[c.name]):
            _stop(child)
        if children:
            say("all stopped")


# -- the local stream job's pid file (read by `telcopulse status`) ---------------------------


def stream_pid_path(settings: Settings) -> Path:
    """Where a running local stream job (`telcopulse stream`) records its process id."""
    return (settings.home / "stream.pid").resolve()


@contextmanager
def recording_pid(path: Path) -> Iterator[None]:
    """Hold this process's id in ``path`` while the block runs; remove it afterwards unless
    another process has written its own id there since."""
    pid = os.getpid()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid}\n")
    try:
        yield
    finally:
        with suppress(OSError, ValueError):
            if int(path.read_text()) == pid:
                path.unlink()


def running_pid(path: Path) -> int | None:
    """The id recorded in ``path`` if that process is alive; None without a file, or with a
    stale one (its process is gone: killed with SIGKILL, or the machine restarted)."""
    try:
        pid = int(path.read_text())
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except PermissionError:
        return pid  # it exists, under another user
    except OSError:
        return None
    return pid
