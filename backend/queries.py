"""Query layer: every KPI and health query, loaded from ``backend/sql/*.sql``.

Each query is written once, in SQL that both DuckDB and Athena (Trino) run, with
``?`` placeholders for bound parameters. User input never reaches the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import pandas as pd

from backend.engine import ATHENA_PARAMETER_LIMIT, QueryEngine, athena_literal
from backend.errors import QueryError

SQL_DIR = Path(__file__).with_name("sql")
# Wide defaults so an open-ended range still binds real values.
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(2999, 12, 31, tzinfo=UTC)


@cache
def load_sql(name: str) -> str:
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise KeyError(f"no query named {name!r} in {SQL_DIR}")
    return path.read_text(encoding="utf-8")


def query_names() -> list[str]:
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))


def sql_timestamp(moment: datetime) -> str:
    """A UTC timestamp literal value that DuckDB and Athena both CAST the same way."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def sql_date(day: date) -> str:
    return day.isoformat()


@dataclass(frozen=True)
class Window:
    """A half-open time range [since, until) over one-minute buckets."""

    since: datetime = BEGINNING
    until: datetime = END_OF_TIME

    def params(self) -> list[str]:
        return [
            sql_timestamp(self.since),
            sql_timestamp(self.until),
            sql_date(self.since.astimezone(UTC).date()),
            sql_date(self.until.astimezone(UTC).date()),
        ]


def _clean(values) -> tuple[str, ...]:
    """Distinct non-blank values with whitespace runs collapsed, as the contract does for
    operator names, in a stable order (sorted, so equal choices share a cache entry).

    Collapsing also means no value holds the separator, so one value never turns into two.
    """
    return tuple(sorted({" ".join(str(v).split()) for v in values} - {""}))


# Joins a filter's values into one text that the SQL splits with chr(10): an operator name
# never holds a newline (canonicalisation collapses whitespace).
FILTER_SEPARATOR = "\n"
# Athena takes each execution parameter as a literal of at most 1,024 characters (the
# StartQueryExecution API reference; botocore's model: ExecutionParameter max 1024), so one
# list travels in this many parameters, which the SQL concatenates: about 4,000 characters
# of choices, some 570 six-digit postal codes. More is refused with a one-line message.
FILTER_CHUNKS = 4


class TooManyChoices(QueryError):
    """A filter list longer than a query can carry."""


def filter_chunks(values: tuple[str, ...], what: str) -> list[str]:
    """``values`` joined by the separator, cut at separators into ``FILTER_CHUNKS`` texts
    (the unused ones empty) whose Athena literals each fit one execution parameter."""
    pieces = [v + FILTER_SEPARATOR for v in values[:-1]] + list(values[-1:])
    chunks = [""]
    for piece in pieces:
        if len(athena_literal(chunks[-1] + piece)) > ATHENA_PARAMETER_LIMIT:
            if not chunks[-1] or len(athena_literal(piece)) > ATHENA_PARAMETER_LIMIT:
                raise TooManyChoices(f"a {what[:-1]} of {len(piece)} characters is too long")
            chunks.append("")
        chunks[-1] += piece
    if len(chunks) > FILTER_CHUNKS:
        raise TooManyChoices(
            f"{len(values)} {what} selected: a query carries about "
            f"{FILTER_CHUNKS * ATHENA_PARAMETER_LIMIT:,} characters of them (Athena's "
            f"{ATHENA_PARAMETER_LIMIT:,}-character parameters, {FILTER_CHUNKS} per list); "
            "select fewer"
        )
    return chunks + [""] * (FILTER_CHUNKS - len(chunks))


@dataclass(frozen=True)
class Filters:
    """Operator and postal-code filters of the KPI queries; an empty tuple means all.

    Each list travels as bound text parameters (``params``), so whatever a user types,
    nothing is ever formatted into SQL.
    """

    operators: tuple[str, ...] = ()
    postal_codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "operators", _clean(self.operators))
        object.__setattr__(self, "postal_codes", _clean(self.postal_codes))

    @property
    def is_empty(self) -> bool:
        return not self.operators and not self.postal_codes

    def params(self) -> list[str]:
        """Each list as ``FILTER_CHUNKS`` parameters (``filter_chunks``): operators first."""
        return [
            *filter_chunks(self.operators, "operators"),
            *filter_chunks(self.postal_codes, "postal codes"),
        ]


NO_FILTERS = Filters()


def committed_batch(engine: QueryEngine) -> int:
    """Newest committed batch id, or -1 when nothing is committed yet."""
    frame = engine.run(load_sql("committed_batch"))
    value = frame["batch_id"].iloc[0] if len(frame) else None
    return -1 if value is None or pd.isna(value) else int(value)


def run_kpi(
    engine: QueryEngine,
    name: str,
    window: Window,
    batch: int | None = None,
    filters: Filters = NO_FILTERS,
) -> pd.DataFrame:
    """Run a KPI query over committed batches only (one snapshot per call unless given).

    KPI queries take the filters first, then the batch and the window.
    """
    watermark = committed_batch(engine) if batch is None else batch
    return engine.run(load_sql(name), [*filters.params(), watermark, *window.params()])
