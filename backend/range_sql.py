"""The SQL of composed ranges (query layer): the macros that read a window from rollups.

``backend.ranges`` decides which parts of a window come from day rollups, hour rollups and
raw rows; these write the same parts as SQL predicates and unions over the parameters
``range_params`` binds, so the SQL says exactly what ``Scope`` lists: ``{{window_rows}}``
for gold, ``{{ops_rows}}`` for ``_ops``, and the three part predicates any other composed
query builds its own union from (``health_quarantine_reasons.sql``). ``backend.queries``
expands them.
"""

from __future__ import annotations

from glue_job.tables import OPS_ROLLUPS, ROLLUPS, TABLES


def visible(table: str | None = None) -> str:
    """The rows a reader at committed batch :batch sees (``backend.catalog``'s
    ``visible_through``)."""
    prefix = f"{table}." if table else ""
    return f":batch BETWEEN {prefix}commit_id AND {prefix}visible_through"


def _between(moment: str, since: str, until: str) -> str:
    return f"{moment} >= CAST(:{since} AS TIMESTAMP) AND {moment} < CAST(:{until} AS TIMESTAMP)"


def _days(day: str, first: str, last: str) -> str:
    return f"{day} BETWEEN CAST(:{first} AS DATE) AND CAST(:{last} AS DATE)"


def _ring(moment: str, day: str, outer: tuple[str, str], inner: tuple[str, str]) -> str:
    """``moment`` in the span ``outer`` (the names of its since and until parameters) but
    not in the span ``inner`` it encloses, and ``day`` (its date partition) in the days of
    the two edges left: from the outer span's first day (parameter ``<since>_day``) to the
    inner's, and from the inner's last to the outer's. So it reads only those days."""
    o_since, o_until = outer
    i_since, i_until = inner
    return f"""{_between(moment, o_since, o_until)}
      AND NOT ({_between(moment, i_since, i_until)})
      AND ({_days(day, o_since + "_day", i_since + "_day")}
        OR {_days(day, i_until + "_day", o_until + "_day")})"""


def raw_part(moment: str, day: str, prefix: str = "") -> str:
    """``moment`` (a row's own time, ``day`` its date partition) in the parts of the window
    that ``{{window_rows}}`` and ``{{ops_rows}}`` read raw: outside the rolled-up hours."""
    p = prefix
    return _ring(moment, day, (p + "since", p + "until"), (p + "rolled_since", p + "rolled_until"))


def hour_part(moment: str, day: str, prefix: str = "") -> str:
    """An hour rollup's ``moment`` (its hour; ``day`` its date partition) in the window's
    hours read from hour rollups (``backend.ranges.compose``)."""
    p = prefix
    return _ring(
        moment, day, (p + "rolled_since", p + "rolled_until"), (p + "days_since", p + "days_until")
    )


def day_part(moment: str, month: str, prefix: str = "") -> str:
    """A day rollup's ``moment`` (its day; ``month`` its month partition) in the window's
    days read from day rollups."""
    p = prefix
    return f"""{_between(moment, p + "days_since", p + "days_until")}
      AND {_days(month, p + "days_since_month", p + "days_until_month")}"""


def window_rows(table: str, prefix: str = "") -> str:
    """The rows of a minute gold ``table`` in the window, read from its day rollups, hour
    rollups and minute partials (``backend.ranges``), each part with its own partitions.
    Every row has the minute table's columns, ``minute`` being the period's start, plus
    the first and last minute it holds (``minute_min``, ``minute_max``), the last minute
    of its period (``period_end``: computed from the period, so it reads no column),
    ``commit_id`` and ``visible_through``. Parameters (``range_params``) take ``prefix``
    when one query reads two windows."""
    p = prefix
    values = [n for n, _ in TABLES[table].columns if n not in ("minute", "commit_id")]
    kept = ", ".join([*values, "commit_id", "visible_through"])
    hour, day = ROLLUPS[table]["hour"].name, ROLLUPS[table]["day"].name
    return f"""(
    SELECT minute, minute AS minute_min, minute AS minute_max, minute AS period_end,
        event_date, {kept}
    FROM {table}
    WHERE {raw_part("minute", "event_date", p)}
    UNION ALL
    SELECT hour AS minute, minute_min, minute_max, hour + INTERVAL '59' MINUTE AS period_end,
        event_date, {kept}
    FROM {hour}
    WHERE {hour_part("hour", "event_date", p)}
    UNION ALL
    SELECT day AS minute, minute_min, minute_max, day + INTERVAL '1439' MINUTE AS period_end,
        CAST(day AS DATE) AS event_date, {kept}
    FROM {day}
    WHERE {day_part("day", "event_month", p)}
)"""


# What ``{{ops_rows}}`` gives per period: ``_ops``'s rollup columns, the period's start
# as ``time``.
_OPS_VALUES = [n for n, _ in OPS_ROLLUPS["hour"].columns if n not in ("hour", "commit_id")]


def ops_rows(prefix: str = "") -> str:
    """The committed batches that started in the window, as rows of ``_ops``'s rollup
    columns: day rollups for the whole days below the ``_ops`` mark, hour rollups for the
    other whole hours below it, and one row per raw commit row for the rest
    (``backend.ranges``; the parameters are ``range_params`` of the snapshot's ``ops``).
    A raw batch's input-rate interval is the time since the batch before it in the same
    clock hour and window, as the hour rollups time it (``glue_job.rollups``)."""
    p = prefix
    kept = ", ".join(_OPS_VALUES)
    hour, day = OPS_ROLLUPS["hour"].name, OPS_ROLLUPS["day"].name
    return f"""(
    SELECT
        batch_start AS time,
        1 AS batches,
        records_read AS records,
        bronze_rows,
        silver_rows,
        quarantine_rows,
        duplicates,
        CASE WHEN bronze_rows = silver_rows + quarantine_rows + duplicates THEN 0 ELSE 1 END
            AS mismatched_batches,
        0 AS quarantine_table_rows,
        batch_id AS batch_id_min,
        batch_id AS batch_id_max,
        batch_start AS batch_start_min,
        batch_start AS batch_start_max,
        duration_seconds AS busy_seconds,
        duration_seconds AS duration_seconds_max,
        source_lag_seconds AS source_lag_sum,
        CASE WHEN source_lag_seconds IS NULL THEN 0 ELSE 1 END AS source_lag_count,
        source_lag_seconds AS source_lag_seconds_max,
        CASE WHEN interval_ms IS NULL THEN 0 ELSE records_read END AS timed_records,
        CAST(interval_ms AS DOUBLE) / 1000 AS timed_seconds
    FROM (
        SELECT
            *,
            date_diff(
                'millisecond',
                lag(batch_start) OVER (
                    PARTITION BY date_trunc('hour', batch_start) ORDER BY batch_id
                ),
                batch_start
            ) AS interval_ms
        FROM ops
        WHERE {visible()}
          AND {raw_part("batch_start", "batch_date", p)}
    ) AS raw
    UNION ALL
    SELECT hour AS time, {kept}
    FROM {hour}
    WHERE {visible()}
      AND {hour_part("hour", "batch_date", p)}
    UNION ALL
    SELECT day AS time, {kept}
    FROM {day}
    WHERE {visible()}
      AND {day_part("day", "batch_month", p)}
)"""
