"""Where the test suite's minutes go: each module's time from ``make test``'s JUnit XML.

``make test`` writes ``build/junit/main.xml`` and ``build/junit/glue.xml``. Each test's time
there is its setup, call and teardown, so a module's fixtures count in its first test.
The two suites run on two pytest-xdist processes each, so a module's seconds are worker
seconds, and a suite's wall time is about half their sum.

    python -m bench.suite_times [build/junit/main.xml ...] [--top 25]
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

DEFAULT = (Path("build/junit/main.xml"), Path("build/junit/glue.xml"))


def module_seconds(report: ET.ElementTree) -> Counter[str]:
    """Seconds per test module (``tests/e2e/test_up.py``) in one parsed JUnit XML report."""
    seconds: Counter[str] = Counter()
    for case in report.iter("testcase"):
        module = case.get("classname", "").split(".")
        while module and module[-1][:1].isupper():  # a test class's name, not the module's
            module.pop()
        seconds["/".join(module) + ".py"] += float(case.get("time") or 0)
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.suite_times", description=__doc__)
    parser.add_argument("reports", nargs="*", type=Path, default=list(DEFAULT))
    parser.add_argument("--top", type=int, default=25, help="modules to list per report")
    args = parser.parse_args(argv)
    for report in args.reports:
        if not report.is_file():
            parser.error(f"no such report: {report} (run make test first)")
        tree = ET.parse(report)
        seconds = module_seconds(tree)
        total = sum(seconds.values())
        wall = sum(float(s.get("time") or 0) for s in tree.iter("testsuite"))
        print(f"{report}: {wall:,.0f} s, {total:,.0f} worker-seconds in {len(seconds)} modules")
        for module, spent in seconds.most_common(args.top):
            print(f"  {spent:8.1f} s  {spent / total:6.1%}  {module}")


if __name__ == "__main__":
    main()
