"""`make lint`'s dependency audit: pip-audit over every package installed in .venv.

Known vulnerabilities fail the run unless infra/audit-allow.txt explains each one (a line
``ID  why it does not apply``). pip-audit needs PyPI's vulnerability data; where it cannot
be reached (an offline machine, a mirror without the JSON API), packages come back
unaudited, and this says so in one line rather than passing them as clean.

Usage: python infra/audit.py PIP_AUDIT VENV_PYTHON
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ALLOW_FILE = Path(__file__).with_name("audit-allow.txt")


def allowed() -> dict[str, str]:
    """Vulnerability id -> the reason it is accepted, from ALLOW_FILE."""
    reasons = {}
    for raw in ALLOW_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            vuln, _, why = line.partition(" ")
            if not why.strip():
                sys.exit(f"audit: {ALLOW_FILE.name}: {vuln} needs a reason after its id")
            reasons[vuln] = why.strip()
    return reasons


def main(pip_audit: str, venv_python: str) -> int:
    frozen = subprocess.run(
        [venv_python, "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        report = Path(tmp) / "audit.json"
        requirements.write_text(frozen)
        options = ["--no-deps", "--disable-pip", "--progress-spinner", "off", "--format", "json"]
        run = subprocess.run(
            [pip_audit, "-r", str(requirements), *options, "--output", str(report)],
            check=False,
            capture_output=True,
            text=True,
        )
        if not report.exists():
            print(f"audit: pip-audit failed: {run.stderr.strip().splitlines()[-1:]}")
            return 1
        deps = json.loads(report.read_text())["dependencies"]

    accepted = allowed()
    skipped = [d["name"] for d in deps if "skip_reason" in d]
    found = [(d["name"], d["version"], v) for d in deps for v in d.get("vulns", [])]
    failing = [f for f in found if f[2]["id"] not in accepted]
    for name, version, vuln in found:
        verdict = accepted.get(vuln["id"], "NOT EXPLAINED")
        fixes = ", ".join(vuln.get("fix_versions", [])) or "none yet"
        print(f"audit: {name} {version}: {vuln['id']} (fixed in {fixes}): {verdict}")
    audited = len(deps) - len(skipped)
    print(
        f"audit: {audited} of {len(deps)} packages audited, {len(found)} known "
        f"vulnerabilities, {len(failing)} unexplained"
    )
    if skipped:
        print(
            f"warning: pip-audit could not get vulnerability data for {len(skipped)} packages "
            "(is PyPI's JSON API reachable from here?): those are not audited"
        )
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
