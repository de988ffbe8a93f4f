"""Local Kinesis (stream layer, local deployment): run kinesalite, or moto's server as a fallback.

kinesalite speaks the Kinesis API and persists records under ``<home>/kinesis``,
so a restarted stack resumes where it stopped. It runs as ``node .../cli.js``
directly: ``npx`` would put a wrapper process in between and leave node orphaned
when the wrapper is killed. Without Node.js (or without ``npm install``) moto's
server takes over on the same port, in memory only.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from backend.settings import Settings

# The repository root, where `npm install` puts node_modules. Derived from this file rather
# than `backend.__file__`: a tests/backend folder without __init__ can shadow the package.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
KINESALITE_CLI = PROJECT_ROOT / "node_modules" / "kinesalite" / "cli.js"
# Loaded into node before kinesalite: its LevelDB keeps at most 100 table files open, so the
# indexes those files keep in memory stop growing with the data it holds (the file says why
# and what was measured).
LEVELDB_PRELOAD = Path(__file__).resolve().with_name("kinesalite_leveldb.js")
LOCAL_HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class EmulatorError(ValueError):
    """The emulator could not start or answer; the message says what to do.

    A ValueError like the project's other user-facing errors, so the CLI prints it
    as one line instead of a traceback.
    """


# V8's old space capped (Node's CLI docs, "Useful V8 options": as memory consumption nears
# the limit, V8 spends more time collecting). Uncapped, an emulator at 2,000 events/s grew
# its heap to the high-water mark of its bursts, 120 MB and more, and kept it. Its live set
# after a full collection stays at 8-22 MB (--trace-gc, the same load), so 96 MB leaves
# four times that for bursts; capped, V8's pages stayed at 47-60 MB for an hour. Its C heap
# grew about 70 MB an hour at that load (docs/reliability.md, the soak), much of it the
# indexes of LevelDB's open table files, which LEVELDB_PRELOAD bounds.
NODE_OLD_SPACE_MB = 96


def kinesalite_command(settings: Settings) -> list[str]:
    """The exact kinesalite command line: streams change state instantly, up to 100 shards."""
    return [
        "node",
        f"--max-old-space-size={NODE_OLD_SPACE_MB}",
        "--require",
        str(LEVELDB_PRELOAD),
        str(KINESALITE_CLI),
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


def moto_command(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "moto.server",
        "--host",
        LOCAL_HOST,
        "--port",
        str(settings.emulator_port),
    ]


def missing_kinesalite() -> str | None:
    """Why kinesalite cannot run here (a hint for the user), or None when it can."""
    if shutil.which("node") is None:
        return "Node.js is not installed; install it and run `npm install` for persistence"
    if not KINESALITE_CLI.is_file():
        return f"kinesalite is not installed; run `npm install` in {PROJECT_ROOT} for persistence"
    return None


def emulator_command(settings: Settings) -> list[str]:
    """kinesalite if it can run, else moto's server, announced by one warning line on stderr."""
    reason = missing_kinesalite()
    if reason is None:
        return kinesalite_command(settings)
    print(
        f"warning: using moto's Kinesis server, which keeps the stream in memory only "
        f"(records are lost when it stops): {reason}",
        file=sys.stderr,
    )
    return moto_command(settings)


def start_emulator(settings: Settings, *, log_path: Path | None = None) -> subprocess.Popen:
    """Start the emulator in the background; pair with ``wait_until_ready`` and ``stop_emulator``.

    Its output goes to ``log_path`` (default ``<home>/logs/emulator.log``). On Linux the
    emulator is killed if the process that started it dies, so a crashed or killed
    parent leaves no node process behind (start it from a long-lived thread: Linux
    ties this to the starting thread).
    """
    command = _prepare(settings)
    log_path = log_path or settings.home / "logs" / "emulator.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(),  # noqa: PLW1509 - only calls prctl before exec
        )


def run_emulator(settings: Settings) -> int:
    """``telcopulse emulator``: run in the foreground until Ctrl-C or SIGTERM; return the exit code.

    Output stays on this terminal. SIGTERM is turned into a clean stop, so a
    supervisor stopping this process also stops the emulator.
    """
    command = _prepare(settings)
    where = f"data in {settings.emulator_dir}" if command[0] == "node" else "in memory"
    print(
        f"Kinesis emulator on {emulator_url(settings)} ({where}); Ctrl-C stops it",
        file=sys.stderr,
    )
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent(),  # noqa: PLW1509 - only calls prctl before exec
    )

    def _stop_on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm) if in_main_thread else None
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop_emulator(proc)
        return 0
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        stop_emulator(proc)


def stop_emulator(proc: subprocess.Popen, timeout: float = 5.0) -> int | None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return proc.returncode


def emulator_url(settings: Settings) -> str:
    return f"http://{LOCAL_HOST}:{settings.emulator_port}"


def wait_until_ready(
    settings: Settings, timeout: float = 15.0, proc: subprocess.Popen | None = None
) -> None:
    """Poll the emulator's port until it answers ListStreams.

    With ``proc``, fail at once if the emulator exits (a bad port, a corrupt data
    directory) instead of waiting out the timeout.
    """
    local = _emulator_settings(settings)
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise EmulatorError(
                f"the Kinesis emulator exited with code {proc.returncode} before answering; "
                f"see its log (by default {settings.home / 'logs' / 'emulator.log'})"
            )
        if endpoint_answers(local, timeout=1.0):
            return
        if time.monotonic() > deadline:
            raise EmulatorError(
                f"the Kinesis emulator did not answer on {emulator_url(settings)} "
                f"within {timeout:g}s"
            )
        time.sleep(0.1)


def endpoint_answers(settings: Settings, timeout: float = 1.0) -> bool:
    """Does the configured Kinesis endpoint answer a ListStreams call? Never raises."""
    url = settings.endpoint_url
    if url is not None:
        # Refused connections are the common case locally; a raw connect tells fast.
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or LOCAL_HOST, port), timeout=timeout):
                pass
        except OSError:
            return False
    # Imported here: `telcopulse emulator` itself never talks to the stream, and boto3
    # would cost that long-lived process some 90 MB.
    from botocore.exceptions import BotoCoreError, ClientError

    from backend.kinesis import kinesis_client

    try:
        client = kinesis_client(settings, connect_timeout=timeout, retries=1)
        client.list_streams(Limit=1)
    except (BotoCoreError, ClientError):
        return False
    return True


def _prepare(settings: Settings) -> list[str]:
    """Checks shared by foreground and background starts; returns the command to run."""
    if _port_in_use(settings.emulator_port):
        raise EmulatorError(
            f"port {settings.emulator_port} is already in use (an emulator already running?): "
            "stop it, or pick another port with TELCOPULSE_EMULATOR_PORT"
        )
    settings.emulator_dir.mkdir(parents=True, exist_ok=True)
    return emulator_command(settings)


def _emulator_settings(settings: Settings) -> Settings:
    """The same settings, pointed at the local emulator whatever the configured endpoint."""
    return settings.model_copy(update={"mode": "local", "kinesis_endpoint": emulator_url(settings)})


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOCAL_HOST, port)) == 0


def die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    return functools.partial(_die_with_parent, os.getpid())


def _die_with_parent(parent_pid: int) -> None:
    """Runs in the child before exec: ask Linux to SIGTERM it when its parent goes away."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # Close the race where the parent died before prctl took effect.
    if os.getppid() != parent_pid:
        os._exit(1)
