"""Map data (query layer): postal-code centroids, coverage cells, and one area's breakdown.

Postal codes come from ``gold_postal_status_minute``: a code is placed at the centroid of
the positions its events carried (Σ latitude_sum / Σ position_count). Coverage cells (H3,
at ``glue_job.contract.H3_RESOLUTIONS``) come from ``gold_cell_minute``. Every figure is
a ratio of sums over the one-minute partials (or their hour and day rollups). Like
``backend.kpis`` every page query takes ``(engine, batch, window, *params)``, and the
postal code a user picks is a bound parameter, never part of the SQL text.

No streamlit here: the same functions run in tests, the CLI and behind the UI's caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from backend.engine import QueryEngine
from backend.frames import as_float, as_int, as_utc, numeric, ratio
from backend.kpis import trend_bucket
from backend.queries import Window, run_query
from backend.windows import pick_bucket
from glue_job.contract import H3_RESOLUTIONS, STATUS_LABELS
from glue_job.tables import STATUS_COLUMNS

OUT_OF_SERVICE = "OUT_OF_SERVICE"
OUT_OF_SERVICE_CODE = next(code for code, label in STATUS_LABELS.items() if label == OUT_OF_SERVICE)
POINT_COLUMNS: tuple[str, ...] = (
    "postal_code",
    "latitude",
    "longitude",
    "events",
    "avg_signal_dbm",
    "signal_samples",
    "out_of_service_events",
    "out_of_service_share",
    "positions",
    "periods_from",
    "periods_until",
)


# --- the map ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostalMap:
    """Postal codes with a centroid in a window, and what the map cannot place.

    ``points`` has one row per postal code whose events carried at least one position,
    sorted by postal code. Its figures cover all of the code's events, those without a
    position included (they count towards the code, they just do not move its centroid).
    """

    points: pd.DataFrame
    events: int  # every committed event in the window
    without_postal_code: int  # events that carried no postal code
    without_position: int  # events of postal codes none of whose events carried a position
    codes_without_position: int
    unplaced_in_mapped: int  # events of mapped postal codes that carried no position

    @property
    def is_empty(self) -> bool:
        return self.events == 0

    @property
    def excluded(self) -> int:
        """Events that are not on the map at all."""
        return self.without_postal_code + self.without_position


def query_postal_map(engine: QueryEngine, batch: int, window: Window) -> PostalMap:
    frame = run_query(
        engine,
        "map_postal_codes",
        batch=batch,
        out_of_service=OUT_OF_SERVICE_CODE,
        **window.rows_params(batch),
    )
    frame = numeric(
        frame,
        ["avg_signal_dbm", "latitude", "longitude"],
        ["events", "out_of_service_events", "signal_samples", "positions"],
    )
    no_code = frame["postal_code"].isna()
    placed = (
        ~no_code & frame["positions"].gt(0) & frame["latitude"].notna() & frame["longitude"].notna()
    )
    unplaced = frame[~no_code & ~placed]
    points = frame[placed].assign(
        out_of_service_share=lambda f: f["out_of_service_events"] / f["events"]
    )
    points = points.sort_values("postal_code", ignore_index=True)[list(POINT_COLUMNS)]
    return PostalMap(
        points=points,
        events=int(frame["events"].sum()),
        without_postal_code=int(frame.loc[no_code, "events"].sum()),
        without_position=int(unplaced["events"].sum()),
        codes_without_position=len(unplaced),
        unplaced_in_mapped=int((points["events"] - points["positions"]).clip(lower=0).sum()),
    )


def likely_bucket(points: pd.DataFrame, code: str) -> str | None:
    """The trend bucket that ``code``'s breakdown (``query_postal_detail``) almost always
    picks, guessed from the periods holding its events among ``points`` so that the page
    can load the trend alongside the breakdown; None when the code is not among them.

    Those periods (minutes, hours, days) start at most a day before the code's first event
    and end at most a day after its last, so the guess is the exact span's bucket or, near
    a bucket's limit, a coarser one; the page then loads the trend again at the breakdown's.
    """
    row = points[points["postal_code"] == code]
    if row.empty or row["periods_from"].isna().iloc[0] or row["periods_until"].isna().iloc[0]:
        return None
    return pick_bucket(as_utc(row["periods_from"].iloc[0]), as_utc(row["periods_until"].iloc[0]))


def busiest_postal_code(points: pd.DataFrame) -> str:
    """The postal code with the most events (the first by code among equals)."""
    ranked = points.sort_values(["events", "postal_code"], ascending=[False, True])
    return str(ranked["postal_code"].iloc[0])


# --- coverage cells -------------------------------------------------------------------------

CELL_COLUMNS: tuple[str, ...] = (
    "cell",
    "events",
    "avg_signal_dbm",
    "signal_samples",
    "out_of_service_events",
    "out_of_service_share",
)


def query_cells(engine: QueryEngine, batch: int, window: Window, resolution: int) -> pd.DataFrame:
    """One row per H3 cell at ``resolution`` with events in the window (``CELL_COLUMNS``),
    sorted by cell: the events that carried a position, whatever their postal code."""
    if resolution not in H3_RESOLUTIONS:
        raise ValueError(f"no coverage cells at H3 resolution {resolution}: {H3_RESOLUTIONS}")
    frame = run_query(
        engine, "map_cells", batch=batch, resolution=resolution, **window.rows_params(batch)
    )
    frame = numeric(
        frame, ["avg_signal_dbm"], ["events", "out_of_service_events", "signal_samples"]
    )
    frame["out_of_service_share"] = frame["out_of_service_events"] / frame["events"]
    return frame.sort_values("cell", ignore_index=True)[list(CELL_COLUMNS)]


# --- one area: a postal code or a cell ----------------------------------------------------


@dataclass(frozen=True)
class AreaDetail:
    """One postal code or coverage cell over a window: status breakdown, operators and
    window-wide figures. ``area`` is the postal code or the H3 cell.

    ``status`` has a row per status code (zeros included): status, status_label, events,
    share. ``operators`` has operator, events, avg_signal_dbm, signal_samples,
    out_of_service_share, busiest first.
    """

    area: str
    status: pd.DataFrame
    operators: pd.DataFrame
    events: int
    avg_signal_dbm: float | None
    signal_samples: int
    first_minute: datetime | None
    last_minute: datetime | None

    @property
    def is_empty(self) -> bool:
        return self.events == 0

    @property
    def out_of_service_share(self) -> float | None:
        if self.is_empty:
            return None
        rows = self.status[self.status["status_label"] == OUT_OF_SERVICE]
        return float(rows["events"].sum()) / self.events


def query_postal_detail(
    engine: QueryEngine, batch: int, window: Window, postal_code: str
) -> AreaDetail:
    frame = run_query(
        engine,
        "map_postal_breakdown",
        batch=batch,
        postal_code=str(postal_code),
        **window.rows_params(batch),
    )
    frame = numeric(frame, ["signal_sum"], ["events", "signal_samples", "status"])
    out_of_service = frame["events"].where(frame["status_label"] == OUT_OF_SERVICE, 0)
    return _area_detail(
        str(postal_code),
        frame.groupby("status")["events"].sum(),
        frame.assign(out_of_service_events=out_of_service),
    )


def query_cell_detail(engine: QueryEngine, batch: int, window: Window, cell: str) -> AreaDetail:
    """One coverage cell: the same breakdown as a postal code's (``query_postal_detail``)."""
    frame = run_query(
        engine, "map_cell_breakdown", batch=batch, cell=str(cell), **window.rows_params(batch)
    )
    frame = numeric(frame, ["signal_sum"], ["events", "signal_samples", *STATUS_COLUMNS.values()])
    by_status = pd.Series({code: frame[name].sum() for code, name in STATUS_COLUMNS.items()})
    out_of_service = frame[STATUS_COLUMNS[OUT_OF_SERVICE_CODE]]
    return _area_detail(str(cell), by_status, frame.assign(out_of_service_events=out_of_service))


def _area_detail(area: str, by_status: pd.Series, frame: pd.DataFrame) -> AreaDetail:
    """An area's detail from its events per status code and its rows per operator (events,
    signal_sum, signal_samples, out_of_service_events, first_minute, last_minute)."""
    events = int(frame["events"].sum())
    status = pd.DataFrame(
        {"status": list(STATUS_LABELS), "status_label": list(STATUS_LABELS.values())}
    )
    status["events"] = status["status"].map(by_status).fillna(0).astype("int64")
    status["share"] = status["events"] / events if events else float("nan")

    operators = frame.groupby("operator", as_index=False)[
        ["events", "signal_sum", "signal_samples", "out_of_service_events"]
    ].sum()
    operators["avg_signal_dbm"] = ratio(operators["signal_sum"], operators["signal_samples"])
    operators["out_of_service_share"] = operators["out_of_service_events"] / operators["events"]
    operators = operators.sort_values(
        ["events", "operator"], ascending=[False, True], ignore_index=True
    )[["operator", "events", "avg_signal_dbm", "signal_samples", "out_of_service_share"]]

    samples = int(frame["signal_samples"].sum())
    return AreaDetail(
        area=area,
        status=status,
        operators=operators,
        events=events,
        avg_signal_dbm=as_float(frame["signal_sum"].sum() / samples) if samples else None,
        signal_samples=as_int(samples),
        first_minute=as_utc(frame["first_minute"].min()) if len(frame) else None,
        last_minute=as_utc(frame["last_minute"].max()) if len(frame) else None,
    )


def query_postal_trend(
    engine: QueryEngine, batch: int, window: Window, postal_code: str, bucket: str
) -> pd.DataFrame:
    """One row per bucket (UTC): events, events per status label, avg_signal_dbm, samples.

    ``bucket`` is a ``windows.TREND_BUCKETS`` key, as on the other pages.
    """
    frame = _trend_rows(engine, "map_postal_trend", batch, window, bucket, postal_code=postal_code)
    frame = numeric(frame, ["signal_sum"], ["events", "signal_samples"])
    if frame.empty:
        return pd.DataFrame(columns=TREND_COLUMNS)
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    per_status = (
        frame.pivot_table(index="bucket", columns="status_label", values="events", aggfunc="sum")
        .reindex(columns=list(STATUS_LABELS.values()))
        .fillna(0)
        .astype("int64")
    )
    per_status.columns.name = None
    return _trend(
        per_status, frame.groupby("bucket")[["events", "signal_sum", "signal_samples"]].sum()
    )


def query_cell_trend(
    engine: QueryEngine, batch: int, window: Window, cell: str, bucket: str
) -> pd.DataFrame:
    """A coverage cell's trend, in the columns of ``query_postal_trend``."""
    frame = _trend_rows(engine, "map_cell_trend", batch, window, bucket, cell=cell)
    counts = ["events", "signal_samples", *STATUS_COLUMNS.values()]
    frame = numeric(frame, ["signal_sum"], counts)
    if frame.empty:
        return pd.DataFrame(columns=TREND_COLUMNS)
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    frame = frame.set_index("bucket")
    per_status = frame[list(STATUS_COLUMNS.values())].astype("int64")
    per_status.columns = [STATUS_LABELS[code] for code in STATUS_COLUMNS]
    return _trend(per_status, frame[["events", "signal_sum", "signal_samples"]])


def _trend_rows(
    engine: QueryEngine, name: str, batch: int, window: Window, bucket: str, **area: str
) -> pd.DataFrame:
    """Query ``name``'s rows per ``bucket`` (a ``windows.TREND_BUCKETS`` key) for one area
    (``postal_code=`` or ``cell=``), its rollup grains capped by the bucket's unit."""
    unit, step = trend_bucket(bucket)
    return run_query(
        engine,
        name,
        batch=batch,
        unit=unit,
        step=step,
        **{key: str(value) for key, value in area.items()},
        **window.rows_params(batch, unit),
    )


TREND_COLUMNS = ["bucket", "events", *STATUS_LABELS.values(), "avg_signal_dbm", "signal_samples"]


def _trend(per_status: pd.DataFrame, sums: pd.DataFrame) -> pd.DataFrame:
    """A trend's rows from its events per status label and its sums, both by bucket."""
    wide = per_status.join(sums)
    wide["avg_signal_dbm"] = ratio(wide["signal_sum"], wide["signal_samples"])
    return wide.rename_axis("bucket").reset_index()[TREND_COLUMNS]
