"""Long runs in docs/reliability.md (bench): the soak and the many-viewers sections.

docs/reliability.md has two authors. The test suite renders the scenario tables from
``docs/reliability.json`` (``tests/reliability.py``); `make soak` and
``bench.viewers_bench`` each measure for minutes to an hour, far too long for `make test`,
and write their own section. Each such section sits between two HTML comments::

    <!-- long-run:soak -->
    ## Soak: ...
    <!-- /long-run:soak -->

so one author replaces its own section and keeps the others' text as it was.
"""

from __future__ import annotations

import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RELIABILITY_MD = PROJECT_ROOT / "docs" / "reliability.md"
SECTIONS = ("soak", "viewers")  # their order in the file


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"<!-- long-run:{name} -->\n.*?<!-- /long-run:{name} -->\n", re.S)


def sections(text: str) -> dict[str, str]:
    """The long-run sections ``text`` holds, markers included, by name."""
    found = {}
    for name in SECTIONS:
        match = _pattern(name).search(text)
        if match:
            found[name] = match.group(0)
    return found


def without_sections(text: str) -> str:
    for name in SECTIONS:
        text = _pattern(name).sub("", text)
    return text.rstrip("\n") + "\n"


def with_sections(body: str, kept: dict[str, str]) -> str:
    """``body`` (the scenario tables) followed by the long-run sections, in their order."""
    parts = [without_sections(body)]
    parts += [kept[name] for name in SECTIONS if name in kept]
    return "\n".join(parts)


def replace_section(name: str, markdown: str, path: Path = RELIABILITY_MD) -> None:
    """Write ``markdown`` as section ``name`` of ``path``, keeping everything else."""
    if name not in SECTIONS:
        raise ValueError(f"unknown long-run section {name!r}: one of {', '.join(SECTIONS)}")
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Reliability results\n"
    kept = sections(text)
    kept[name] = f"<!-- long-run:{name} -->\n{markdown.strip()}\n<!-- /long-run:{name} -->\n"
    path.write_text(with_sections(text, kept), encoding="utf-8")
