"""infra/audit.py: vulnerabilities fail unless explained, unaudited packages are named."""

from __future__ import annotations

import importlib.util
import json
import stat
import sys
from pathlib import Path

import pytest
from helpers import PROJECT_ROOT

spec = importlib.util.spec_from_file_location("audit", PROJECT_ROOT / "infra" / "audit.py")
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)


def fake_pip_audit(tmp_path: Path, deps: list[dict]) -> str:
    """An executable that writes ``deps`` as pip-audit's JSON report to its --output."""
    script = tmp_path / "pip-audit"
    report = json.dumps({"dependencies": deps})
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"out = sys.argv[sys.argv.index('--output') + 1]\n"
        f"open(out, 'w').write({report!r})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


VULN = {"id": "PYSEC-2099-1", "fix_versions": ["2.0"], "aliases": [], "description": "x"}


def test_an_unexplained_vulnerability_fails(tmp_path, capsys):
    deps = [{"name": "leaky", "version": "1.0", "vulns": [VULN]}]
    assert audit.main(fake_pip_audit(tmp_path, deps), sys.executable) == 1
    out = capsys.readouterr().out
    assert "leaky 1.0: PYSEC-2099-1 (fixed in 2.0): NOT EXPLAINED" in out
    assert "1 unexplained" in out


def test_an_explained_vulnerability_passes(tmp_path, monkeypatch, capsys):
    allow = tmp_path / "allow.txt"
    allow.write_text("# accepted\nPYSEC-2099-1 only reachable through a feature we never call\n")
    monkeypatch.setattr(audit, "ALLOW_FILE", allow)
    deps = [{"name": "leaky", "version": "1.0", "vulns": [VULN]}, {"name": "ok", "version": "1"}]
    assert audit.main(fake_pip_audit(tmp_path, deps), sys.executable) == 0
    assert "only reachable through a feature we never call" in capsys.readouterr().out


def test_unaudited_packages_are_reported_not_passed_as_clean(tmp_path, capsys):
    deps = [{"name": "dark", "skip_reason": "Dependency not found on PyPI"}]
    assert audit.main(fake_pip_audit(tmp_path, deps), sys.executable) == 0
    out = capsys.readouterr().out
    assert "0 of 1 packages audited" in out
    assert "warning: pip-audit could not get vulnerability data for 1 packages" in out


def test_the_allow_list_explains_every_entry():
    assert audit.ALLOW_FILE == PROJECT_ROOT / "infra" / "audit-allow.txt"  # what make lint reads
    lines = [line.strip() for line in audit.ALLOW_FILE.read_text().splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    accepted = audit.allowed()
    # Every line that is not a comment accepts one id, and says why.
    assert sorted(accepted) == sorted(line.split()[0] for line in entries)
    for vuln, reason in accepted.items():
        assert reason.strip(), f"{vuln}: no reason given"


def test_the_allow_list_reads_ids_and_reasons_and_refuses_an_entry_without_one(
    tmp_path, monkeypatch
):
    allow = tmp_path / "audit-allow.txt"
    allow.write_text(
        "# accepted for now\n"
        "\n"
        "PYSEC-2099-1 only reachable through a feature we never call\n"
        "  GHSA-abcd-efgh-ijkl   the fix is not released yet  \n"
    )
    monkeypatch.setattr(audit, "ALLOW_FILE", allow)
    assert audit.allowed() == {
        "PYSEC-2099-1": "only reachable through a feature we never call",
        "GHSA-abcd-efgh-ijkl": "the fix is not released yet",
    }

    allow.write_text("PYSEC-2099-1 explained\nCVE-2099-0001\n")
    with pytest.raises(SystemExit, match=r"^audit: audit-allow.txt: CVE-2099-0001 needs a reason"):
        audit.allowed()
