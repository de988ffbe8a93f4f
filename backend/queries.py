"""Query layer: every KPI and health query, loaded from ``backend/sql/*.sql`` and bound.

Each query is written once, in SQL that both DuckDB and Athena (Trino) run, with named
parameters (``:batch``, ``:since`` ...) that ``bind`` turns into the ``?`` placeholders
both engines bind server-side: user input never reaches the text. Facts every gold query
shares are written once, as macros the loader expands (``MACROS``): which rows a
snapshot sees (``{{visible(g)}}``), a time range with its partitions
(``{{in_window(g.minute, g.event_date)}}``), the ratio of sums that every average is
(``{{ratio(g.signal_sum, g.signal_count)}}``), trend buckets and the KPI filters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import pandas as pd

from backend.engine import ATHENA_PARAMETER_LIMIT, QueryEngine, athena_literal
from backend.errors import QueryError
from backend.range_sql import day_part, hour_part, ops_rows, raw_part, visible, window_rows
from backend.ranges import NEWEST, TIMESTAMP_FORMAT, Scope, Snapshot, range_params, scope_of

SQL_DIR = Path(__file__).with_name("sql")
# Wide defaults so an open-ended range still binds real values.
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(2999, 12, 31, tzinfo=UTC)


def _in_window(moment: str, day: str | None = None) -> str:
    """``moment`` in [:since, :until); with ``day``, its date partition too, so the engine
    reads only the days of the range."""
    text = f"{moment} >= CAST(:since AS TIMESTAMP) AND {moment} < CAST(:until AS TIMESTAMP)"
    if day:
        text += f" AND {day} BETWEEN CAST(:since_day AS DATE) AND CAST(:until_day AS DATE)"
    return text


MACROS: dict[str, Callable[..., str]] = {
    # The rows a reader at committed batch :batch sees (backend.catalog's visible_through).
    "visible": visible,
    "in_window": _in_window,
    "window_rows": window_rows,
    "ops_rows": ops_rows,
    "raw_part": raw_part,
    "hour_part": hour_part,
    "day_part": day_part,
    # Every average: Σ values / Σ readings over partial sums, never an average of averages.
    "ratio": lambda total, count: f"sum({total}) / NULLIF(sum({count}), 0)",
    # A trend bucket: :unit ('minute' | 'hour' | 'day') with a :step of minutes in the hour.
    "bucket": lambda moment: (
        f"date_trunc(:unit, {moment})"
        f" - INTERVAL '1' MINUTE * (extract(MINUTE FROM {moment}) % :step)"
    ),
    # The KPI filters (``Filters``): newline-separated lists, '' meaning all.
    "filters": lambda: "filters AS (SELECT :operators AS operators, :postal_codes AS postal_codes)",
    "chosen_operator": lambda table: (
        f"(f.operators = '' OR contains(split(f.operators, chr(10)), {table}.operator))"
    ),
    "chosen_postal_code": lambda table: (
        "(f.postal_codes = '' OR contains(split(f.postal_codes, chr(10)), "
        f"coalesce({table}.postal_code, '(none)')))"
    ),
}
_MACRO = re.compile(r"\{\{\s*(\w+)\s*(?:\((.*?)\))?\s*\}\}", re.DOTALL)
# A :name outside quotes (the text is split on quoted literals first).
_PARAMETER = re.compile(r"(?<![\w:]):([a-z_][a-z0-9_]*)")


def _arguments(text: str | None) -> list[str]:
    """A macro's arguments: split on commas outside parentheses."""
    if not text:
        return []
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    parts.append(current.strip())
    return parts


def expand_macros(sql: str) -> str:
    def expand(match: re.Match) -> str:
        name, arguments = match.group(1), match.group(2)
        if name not in MACROS:
            raise KeyError(f"unknown SQL macro {{{{{name}}}}}: one of {', '.join(MACROS)}")
        return MACROS[name](*_arguments(arguments))

    return _MACRO.sub(expand, sql)


@cache
def load_sql(name: str) -> str:
    """The query's text with its macros expanded and its named parameters left in place."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise KeyError(f"no query named {name!r} in {SQL_DIR}")
    return expand_macros(path.read_text(encoding="utf-8"))


def query_names() -> list[str]:
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))


def _outside_quotes(sql: str) -> list[tuple[str, bool]]:
    """The text in pieces, each marked True when it is code (not a quoted literal or a
    comment)."""
    pieces = re.split(r"('(?:[^']|'')*'|--[^\n]*)", sql)
    return [(piece, not piece.startswith(("'", "--"))) for piece in pieces if piece]


def parameter_names(sql: str) -> list[str]:
    """The named parameters of ``sql`` in text order, repeats included."""
    return [
        match.group(1)
        for piece, code in _outside_quotes(sql)
        if code
        for match in _PARAMETER.finditer(piece)
    ]


def bind(sql: str, params: Mapping[str, object]) -> tuple[str, list[object]]:
    """``:name`` -> ``?`` with the values in text order: the one place parameter order is
    decided. A list value (a filter in chunks) becomes ``concat`` of one ``?`` each. A
    missing or unused parameter is an error: both mean the caller and the SQL disagree."""
    names = parameter_names(sql)
    missing = sorted(set(names) - set(params))
    unused = sorted(set(params) - set(names))
    if missing or unused:
        raise KeyError(f"parameters missing {missing}, unused {unused}")
    values: list[object] = []

    def placeholder(match: re.Match) -> str:
        value = params[match.group(1)]
        if isinstance(value, list | tuple):
            values.extend(value)
            return "concat(" + ", ".join(["CAST(? AS VARCHAR)"] * len(value)) + ")"
        values.append(value)
        return "?"

    text = "".join(
        _PARAMETER.sub(placeholder, piece) if code else piece
        for piece, code in _outside_quotes(sql)
    )
    return text, values


def run_query(
    engine: QueryEngine, name: str, *, scope: Scope | None = None, **params: object
) -> pd.DataFrame:
    """Run the named query with its named parameters, and the ``Scope`` of its windows
    (or ``scope``, for a query whose partitions its parameters do not name)."""
    return engine.run(*bind(load_sql(name), params), scope=scope or scope_of(params))


def sql_timestamp(moment: datetime) -> str:
    """A UTC timestamp literal value that DuckDB and Athena both CAST the same way."""
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def sql_date(day: date) -> str:
    return day.isoformat()


@dataclass(frozen=True)
class Window:
    """A half-open time range [since, until) over one-minute buckets."""

    since: datetime = BEGINNING
    until: datetime = END_OF_TIME

    def rows_params(self, batch: int, unit: str | None = None, prefix: str = "") -> dict[str, str]:
        """The parameters of ``{{window_rows}}`` for snapshot ``batch``, its grains capped
        by a trend bucket's ``unit`` (``backend.ranges.range_params``)."""
        return range_params(self.since, self.until, batch, unit, prefix)

    def params(self) -> dict[str, str]:
        """``:since``, ``:until`` (timestamps) and ``:since_day``, ``:until_day`` (dates)."""
        return {
            "since": sql_timestamp(self.since),
            "until": sql_timestamp(self.until),
            "since_day": sql_date(self.since.astimezone(UTC).date()),
            "until_day": sql_date(self.until.astimezone(UTC).date()),
        }


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

    def params(self) -> dict[str, list[str]]:
        """``:operators`` and ``:postal_codes``, each in ``FILTER_CHUNKS`` parameters."""
        return {
            "operators": filter_chunks(self.operators, "operators"),
            "postal_codes": filter_chunks(self.postal_codes, "postal codes"),
        }


NO_FILTERS = Filters()


def committed_batch(engine: QueryEngine) -> Snapshot:
    """Newest committed batch and its rollup marks; batch -1 when nothing is committed."""
    # Only the newest _ops partition: the newest batch started on the newest date. A month
    # of _ops is 1.3 M rows, and reading it all took about 55 ms of every refresh.
    frame = run_query(engine, "committed_batch", scope=NEWEST)
    value = frame["batch_id"].iloc[0] if len(frame) else None
    if value is None or pd.isna(value):
        return Snapshot(-1)
    row = frame.iloc[0]
    marks = (_utc_moment(row[name]) for name in ("rolled_hours_until", "ops_hours_until"))
    return Snapshot(int(value), *marks)


def _utc_moment(value: object) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    moment = pd.Timestamp(value)
    moment = moment.tz_localize(UTC) if moment.tzinfo is None else moment.tz_convert(UTC)
    return moment.to_pydatetime()


def run_kpi(
    engine: QueryEngine,
    name: str,
    window: Window,
    batch: int | None = None,
    filters: Filters = NO_FILTERS,
) -> pd.DataFrame:
    """Run a KPI query over committed batches only (one snapshot per call unless given)."""
    watermark = committed_batch(engine) if batch is None else batch
    return run_query(
        engine, name, batch=watermark, **window.rows_params(watermark), **filters.params()
    )
