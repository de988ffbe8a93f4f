"""bench.suite_times: each module's worker-seconds from a JUnit XML report."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bench import suite_times

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" time="12.5">
<testcase classname="tests.e2e.test_up" name="test_a" time="7.25"/>
<testcase classname="tests.e2e.test_up" name="test_b" time="1.5"/>
<testcase classname="tests.backend.test_kpis.TestSignal" name="test_c" time="2.0"/>
<testcase classname="tests.backend.test_kpis" name="test_d" time="0.25"/>
</testsuite></testsuites>
"""


def test_seconds_add_up_per_module_with_test_classes_folded_in(tmp_path, capsys) -> None:
    report = tmp_path / "main.xml"
    report.write_text(REPORT, encoding="utf-8")
    assert suite_times.module_seconds(ET.parse(report)) == {
        "tests/e2e/test_up.py": 8.75,
        "tests/backend/test_kpis.py": 2.25,
    }
    suite_times.main([str(report), "--top", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{report}: 12 s, 11 worker-seconds in 2 modules"
    assert lines[1:] == ["       8.8 s   79.5%  tests/e2e/test_up.py"]


def test_a_missing_report_is_one_line(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        suite_times.main([str(tmp_path / "none.xml")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith("(run make test first)")
