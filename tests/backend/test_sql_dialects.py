"""Query layer: every query file is Trino (Athena engine v3) SQL and also runs on DuckDB.

Each query is checked as the engines get it: macros expanded and named parameters bound to
``?`` (``queries.bind``). sqlglot parses it with its Trino dialect and regenerates it with
unsupported constructs raising, and the DuckDB run proves the local engine takes the same
text. What sqlglot cannot prove is Trino's type checking: a query can parse yet fail in
Athena on a type mismatch, which only a run in Athena shows. The shared facts (which rows a
snapshot sees, the ratio of sums) are checked to come from the one macro that writes them.
"""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.tokens import TokenType

from backend.catalog import current_views
from backend.engine import DuckDBEngine
from backend.queries import (
    BEGINNING,
    FILTER_CHUNKS,
    SQL_DIR,
    bind,
    load_sql,
    parameter_names,
    query_names,
    sql_date,
    sql_timestamp,
)
from glue_job.tables import TABLES

QUERIES = query_names()
TRINO = sqlglot.Dialect.get_or_raise("trino")
# Column types by name across the lake's tables: a `column = ?` binds a value of that type.
COLUMN_TYPES = {name: kind for t in TABLES.values() for name, kind in t.columns}
COLUMN_TYPES |= {name: kind for t in TABLES.values() for name, kind in t.partition_types}
# What sqlglot parses in any dialect but Trino does not have.
NOT_TRINO = (exp.ILike,)


def named_placeholders(sql: str) -> str:
    """The query with its k-th `?` (outside strings and comments) renamed :p<k>."""
    spots = [t for t in TRINO.tokenize(sql) if t.token_type == TokenType.PLACEHOLDER]
    for index, token in reversed(list(enumerate(spots))):
        sql = sql[: token.start] + f":p{index}" + sql[token.end + 1 :]
    return sql


def dummy_value(placeholder: exp.Placeholder) -> object:
    """A value of the type the query expects at this placeholder."""
    parent = placeholder.parent
    if isinstance(parent, exp.Cast):
        kind = parent.to.sql("trino").upper()
        if kind.startswith("TIMESTAMP"):
            return sql_timestamp(BEGINNING)
        if kind == "DATE":
            return sql_date(BEGINNING.date())
        return "" if kind.startswith("VARCHAR") else 1
    if isinstance(parent, exp.TimestampTrunc | exp.DateTrunc):
        return "minute"
    if isinstance(parent, exp.ArrayContains):
        return "missing_operator"
    if isinstance(parent, exp.Binary):
        other = parent.right if parent.left is placeholder else parent.left
        if isinstance(other, exp.Literal) and other.is_string:
            return ""
        if isinstance(other, exp.Column) and COLUMN_TYPES.get(other.name) == "string":
            return "080193"
    return 1  # batch ids, counts, thresholds, minutes


def dummy_params(sql: str) -> list[object]:
    tree = sqlglot.parse_one(named_placeholders(sql), read="trino")
    values = {p.name: dummy_value(p) for p in tree.find_all(exp.Placeholder)}
    return [values[f"p{k}"] for k in range(len(values))]


LISTS = ("operators", "postal_codes")  # list-valued: FILTER_CHUNKS parameters each


def bound_sql(name: str) -> str:
    """The query as an engine gets it: every named parameter a `?` (lists: a concat of them)."""
    sql = load_sql(name)
    names = set(parameter_names(sql))
    return bind(sql, {n: [""] * FILTER_CHUNKS if n in LISTS else "" for n in names})[0]


@pytest.mark.parametrize("name", QUERIES)
def test_query_is_trino_sql(name: str) -> None:
    sql = bound_sql(name)
    tree = sqlglot.parse_one(sql, read="trino", error_level=ErrorLevel.RAISE)
    assert isinstance(tree, exp.Query)
    # Regenerating it as Trino raises on any construct the Trino dialect cannot express.
    tree.sql(dialect="trino", unsupported_level=ErrorLevel.RAISE)
    assert not list(tree.find_all(*NOT_TRINO))
    assert not [t for t in TRINO.tokenize(sql) if t.token_type == TokenType.DCOLON]
    # Every function is one sqlglot knows (unknown ones would parse as Anonymous unchecked).
    assert [f.name for f in tree.find_all(exp.Anonymous)] == []
    # Bound parameters only: no literal was formatted into the text where a `?` belongs.
    assert sql.count("?") == len(dummy_params(sql))


@pytest.mark.parametrize("name", QUERIES)
def test_query_runs_on_duckdb_over_an_empty_lake(name: str, tmp_path) -> None:
    sql = bound_sql(name)
    frame = DuckDBEngine(tmp_path).run(sql, dummy_params(sql))
    assert len(frame.columns) > 0


def test_dummy_params_follow_the_text_order_and_types() -> None:
    sql = bound_sql("kpi_signal")
    params = dummy_params(sql)
    # The operator and postal-code lists first (in chunks), the batch last (outer WHERE).
    assert params[: 2 * FILTER_CHUNKS] == [""] * 2 * FILTER_CHUNKS
    assert params[-1] == 1
    # Between them, the window's parts (window_rows): timestamps and dates only.
    window = params[2 * FILTER_CHUNKS : -1]
    assert set(window) == {sql_timestamp(BEGINNING), sql_date(BEGINNING.date())}
    assert len(window) == len(parameter_names(load_sql("kpi_signal"))) - 2 - 1


@pytest.mark.parametrize("name", sorted(current_views()))
def test_catalog_view_is_trino_ddl(name: str) -> None:
    # deploy runs these in Athena; the DuckDB engine runs the same text locally.
    sql = current_views()[name]
    tree = sqlglot.parse_one(sql, read="trino", error_level=ErrorLevel.RAISE)
    assert isinstance(tree, exp.Create)
    assert tree.args["kind"] == "VIEW"
    tree.sql(dialect="trino", unsupported_level=ErrorLevel.RAISE)
    assert [f.name for f in tree.find_all(exp.Anonymous)] == []
    assert "?" not in sql


# --- one place per fact ----------------------------------------------------------------------

READS = re.compile(
    r"\bFROM\s+(?:\{\{window_rows\()?(gold_\w+|ops|quarantine|silver|bronze)\b(?!_files)"
)
# Alerts look at fixed, short windows ending now: minute partials answer them directly.
MINUTE_ONLY = {"alert_outages", "alert_signal_drops"}


def source(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", QUERIES)
def test_every_lake_query_sees_rows_through_the_visibility_macro(name: str) -> None:
    text = source(name)
    reads = READS.findall(text)
    if not reads:
        return  # committed_batch reads the files themselves
    assert "visible_through" not in text  # written once, in queries.MACROS["visible"]
    assert text.count("{{visible") >= len(reads), name
    assert "?" not in re.sub(r"--[^\n]*", "", text)  # named parameters only


@pytest.mark.parametrize("name", QUERIES)
def test_every_gold_range_is_read_through_the_rollups(name: str) -> None:
    # Day, hour and minute gold for a user's range: written once, in window_rows.
    code = re.sub(r"--[^\n]*", "", source(name))
    direct = re.findall(r"\bFROM\s+gold_\w+", code)
    if name in MINUTE_ONLY:
        assert "window_rows" not in code
    else:
        assert direct == [], name
        assert "in_window" not in code or not re.search(r"gold_", code), name


@pytest.mark.parametrize("name", QUERIES)
def test_every_average_is_the_ratio_macro(name: str) -> None:
    code = re.sub(r"--[^\n]*", "", source(name))
    # A division of sums written out by hand: sum(...) / [NULLIF(]sum(...)
    assert not re.search(r"sum\([^)]*\)\s*/\s*(NULLIF\s*\()?sum\(", code, re.IGNORECASE), name


def test_bind_puts_values_in_text_order_and_names_what_disagrees() -> None:
    sql = "SELECT :b, ':a' AS text, :a -- :c\nFROM t WHERE x IN (:list)"
    text, values = bind(sql, {"a": 1, "b": 2, "list": ["x", "y"]})
    assert text == (
        "SELECT ?, ':a' AS text, ? -- :c\n"
        "FROM t WHERE x IN (concat(CAST(? AS VARCHAR), CAST(? AS VARCHAR)))"
    )
    assert values == [2, 1, "x", "y"]
    with pytest.raises(KeyError, match=r"missing \['b'\], unused \['z'\]"):
        bind(sql, {"a": 1, "list": [], "z": 3})
