"""KPI queries (query layer): signal, signal bands, GPS precision and network status.

Every page query takes ``(engine, batch, window, *params)``: the committed batch makes one
page refresh read a single consistent snapshot while the stream job keeps committing, and
the window is the time range the page shows. Averages are ratios of sums over gold's
one-minute partials (the SQL's ``{{ratio}}``), never averages of averages. No streamlit
here: the same functions run in tests, the CLI and behind the dashboard's loader.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from backend.engine import QueryEngine
from backend.frames import numeric
from backend.queries import NO_FILTERS, Filters, Window, run_kpi, run_query
from backend.windows import TREND_BUCKETS
from glue_job.contract import SIGNAL_BANDS, STATUS_LABELS, load_aliases

# How the KPI SQL names events without a postal code, in results and in filters.
NO_POSTAL_CODE = "(none)"
BANDS: tuple[str, ...] = tuple(band for band, _ in SIGNAL_BANDS)
IN_SERVICE = STATUS_LABELS[0]
OUT_OF_SERVICE = STATUS_LABELS[1]
# The status heatmap draws this many of the busiest postal codes; the table lists them all.
HEATMAP_POSTAL_CODES = 25


def known_operators() -> list[str]:
    """Every canonical operator in the alias table, sorted: a stable base for chart colours."""
    return sorted(set(load_aliases().values()))


def query_signal(
    engine: QueryEngine, batch: int, window: Window, filters: Filters = NO_FILTERS
) -> pd.DataFrame:
    """operator, avg_signal_dbm, signal_samples: Σ signal_sum / Σ signal_count per operator.

    With a postal-code filter the sums come from the postal-code partials, which keep them.
    """
    name = "kpi_signal_postal" if filters.postal_codes else "kpi_signal"
    frame = run_kpi(engine, name, window, batch, filters)
    return numeric(frame, ["avg_signal_dbm"], ["signal_samples"])


def query_precision(
    engine: QueryEngine, batch: int, window: Window, filters: Filters = NO_FILTERS
) -> pd.DataFrame:
    """operator, avg_precision_m, precision_samples: Σ precision_sum / Σ precision_count.

    Gold keeps GPS precision per operator only: with a postal-code filter this is empty.
    """
    frame = run_kpi(engine, "kpi_precision", window, batch, filters)
    return numeric(frame, ["avg_precision_m"], ["precision_samples"])


def query_signal_bands(
    engine: QueryEngine, batch: int, window: Window, filters: Filters = NO_FILTERS
) -> pd.DataFrame:
    """operator, one reading count per band (``BANDS``, strongest first), signal_samples.

    Gold keeps band counts per operator only: with a postal-code filter this is empty.
    """
    frame = run_kpi(engine, "kpi_signal_bands", window, batch, filters)
    return numeric(frame, [], [*BANDS, "signal_samples"])


def query_status(
    engine: QueryEngine, batch: int, window: Window, filters: Filters = NO_FILTERS
) -> pd.DataFrame:
    """postal_code (``None`` when unknown), status_label, events: long form, one row per pair."""
    return numeric(run_kpi(engine, "kpi_status", window, batch, filters), [], ["events"])


def query_choices(engine: QueryEngine, batch: int, window: Window) -> pd.DataFrame:
    """operator, postal_code (``None`` when unknown), events: what the KPI filters can offer."""
    frame = run_query(engine, "kpi_choices", batch=batch, **window.rows_params(batch))
    return numeric(frame, [], ["events"])


def query_trend(
    engine: QueryEngine, batch: int, window: Window, bucket: str, filters: Filters = NO_FILTERS
) -> pd.DataFrame:
    """bucket (UTC), operator, events, avg_signal_dbm, avg_precision_m and sample counts.

    ``bucket`` is a ``windows.TREND_BUCKETS`` key. With a postal-code filter the series come
    from the postal-code partials, which keep no GPS precision (``avg_precision_m`` is NaN).
    """
    unit, step = trend_bucket(bucket)
    name = "operator_trend_postal" if filters.postal_codes else "operator_trend"
    frame = run_query(
        engine,
        name,
        batch=batch,
        unit=unit,
        step=step,
        **window.rows_params(batch, unit),
        **filters.params(),
    )
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return numeric(
        frame,
        ["avg_signal_dbm", "avg_precision_m"],
        ["events", "signal_samples", "precision_samples"],
    )


def trend_bucket(bucket: str) -> tuple[str, int]:
    """The SQL's (:unit, :step) for a ``TREND_BUCKETS`` key (an allowlist)."""
    if bucket not in TREND_BUCKETS:
        raise ValueError(f"unknown trend bucket {bucket!r}: pick one of {', '.join(TREND_BUCKETS)}")
    return TREND_BUCKETS[bucket]


def operator_options(choices: pd.DataFrame, chosen: Sequence[str] = ()) -> list[str]:
    """Operators to offer: those with events in the window, plus any already chosen."""
    return sorted({*choices["operator"].dropna(), *chosen})


def postal_code_options(choices: pd.DataFrame, chosen: Sequence[str] = ()) -> list[str]:
    """Postal codes to offer, busiest first (``(none)`` for events without one), then the
    chosen codes the window does not have."""
    named = choices.assign(postal_code=choices["postal_code"].fillna(NO_POSTAL_CODE))
    totals = named.groupby("postal_code")["events"].sum().sort_index()
    busiest = totals.sort_values(ascending=False, kind="stable").index.tolist()
    return busiest + sorted(set(chosen) - set(busiest))


def pivot_status(status: pd.DataFrame) -> pd.DataFrame:
    """One row per postal code: events per status label (code order), total, and the shares
    of events in service and out of service.

    Sorted by out-of-service share, then busiest first; events without a postal code form
    the ``(none)`` row.
    """
    labels = list(STATUS_LABELS.values())
    columns = ["postal_code", *labels, "events", "in_service_share", "out_of_service_share"]
    if status.empty:
        return pd.DataFrame(columns=columns)
    named = status.assign(postal_code=status["postal_code"].fillna(NO_POSTAL_CODE))
    wide = (
        named.pivot_table(
            index="postal_code", columns="status_label", values="events", aggfunc="sum"
        )
        .reindex(columns=labels)
        .fillna(0)
        .astype("int64")
    )
    wide.columns.name = None
    wide["events"] = wide[labels].sum(axis=1)
    wide["in_service_share"] = wide[IN_SERVICE] / wide["events"]
    wide["out_of_service_share"] = wide[OUT_OF_SERVICE] / wide["events"]
    wide = wide.reset_index()
    return wide.sort_values(
        ["out_of_service_share", "events", "postal_code"],
        ascending=[False, False, True],
        ignore_index=True,
    )[columns]


def heatmap_rows(wide: pd.DataFrame, limit: int = HEATMAP_POSTAL_CODES) -> pd.DataFrame:
    """The ``limit`` busiest postal codes of a ``pivot_status`` table, in its order (highest
    out-of-service share first); ties at the cut keep the first."""
    busiest = wide.nlargest(limit, "events", keep="first")
    return wide[wide["postal_code"].isin(busiest["postal_code"])]
