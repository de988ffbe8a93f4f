"""Security through the CLI: arguments that reach SQL are inert, credentials never printed.

Dashboard filters are tried against every query in tests/backend/test_kpis.py
and tests/dashboard/test_map.py; this covers the CLI's side, end to end: the real
emulator, the real job and `telcopulse kpi` over the lake it wrote.
"""

from __future__ import annotations

import pytest
from helpers import free_port
from stack_helpers import Stack, running_emulator

pytestmark = pytest.mark.slow

INJECTIONS = [
    "2024-01-01' OR '1'='1",
    "2024-01-01T00:00:00'); DROP TABLE ops; --",
    "now() --",
    "2024-01-01\n UNION SELECT * FROM silver --",
    "1=1",
]
# Credentials a leak would print: not real ones, but shaped like them.
ACCESS_KEY = "AKIAIOSFODNN7LEAKTEST"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYLEAKTESTKEY"
SESSION_TOKEN = "FwoGZXIvYXdzLEAKTESTSESSIONTOKEN"


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A stack whose lake holds 300 events, written with would-be-leaked credentials set."""
    stack = Stack(tmp_path_factory.mktemp("security") / "home", free_port())
    stack.env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_SESSION_TOKEN=SESSION_TOKEN,
    )
    outputs = []
    with running_emulator(stack):
        for args in (("produce", "--count", "300", "--seed", "5"), ("stream", "--until-idle")):
            done = stack.run(*args)
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout + done.stderr)
        yield stack, outputs


@pytest.fixture(scope="module")
def signal_before(filled):
    """``kpi signal`` before any injection was tried: each one must leave it as it was."""
    stack, _ = filled
    return stack.kpi("signal")


@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_through_kpi_time_arguments_is_refused_in_one_line(
    filled, signal_before, option, text
):
    stack, _ = filled
    before = signal_before
    done = stack.run("kpi", "signal", option, text)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("telcopulse: error:")
    assert "Traceback" not in done.stderr
    # Nothing was dropped or changed.
    assert stack.kpi("signal").equals(before)
    assert int(before["samples"].sum()) > 0


@pytest.mark.parametrize(
    "args", [("kpi", "signal' OR 1=1 --"), ("kpi", "status", "--format", "x;")]
)
def test_kpi_names_and_formats_are_allowlisted(filled, args):
    stack, _ = filled
    done = stack.run(*args)
    assert done.returncode == 2
    assert "invalid choice" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_credential_is_ever_printed(filled, tmp_path):
    stack, outputs = filled
    # The commands that ran, a failing one (no stream there), and everything on disk.
    down = dict(stack.env, TELCOPULSE_EMULATOR_PORT=str(free_port()))
    failed = stack.run("produce", "--count", "5", env=down)
    assert failed.returncode != 0
    assert failed.stderr.strip()
    outputs.append(failed.stdout + failed.stderr)
    for args in (("kpi", "signal"), ("kpi", "status", "--format", "json")):
        outputs.append(stack.run(*args).stdout)
    files = [p for p in stack.home.rglob("*") if p.is_file()]
    assert files
    for secret in (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN):
        for text in outputs:
            assert secret not in text
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"{secret[:8]}… in {path}"
