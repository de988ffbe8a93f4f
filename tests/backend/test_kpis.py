"""backend.kpis: every KPI query against the real capture, checked with pandas."""

from __future__ import annotations

import pandas as pd
import pytest

from backend import home, kpis, queries
from backend.queries import Filters, Window, run_kpi
from glue_job.contract import ALIASES_FILE, STATUS_LABELS

INJECTIONS = [
    "' OR '1'='1",
    "Movistar' --",
    "x'); DROP TABLE gold_operator_minute; --",
    "080193\n' UNION SELECT 1, 2, 3 --",
    "%",
    "Movistar\nYoigo' OR 1=1 --",
]


def _canonical_names(rows: pd.DataFrame) -> dict[str, str]:
    """operator key -> the name the dashboard shows, read from the alias table as data."""
    aliases = pd.read_csv(ALIASES_FILE)
    return dict(zip(aliases["alias"].str.casefold(), aliases["operator"], strict=True))


def _bands(dbm: pd.Series) -> pd.Series:
    """The contract's bands, written out again: excellent >= -80, good >= -90, fair >= -100."""
    return pd.cut(
        dbm,
        bins=[-1000, -100, -90, -80, 0],
        right=False,
        labels=["poor", "fair", "good", "excellent"],
    )


def test_pivot_status_one_row_per_postal_code_worst_out_of_service_share_first():
    long = pd.DataFrame(
        {
            "postal_code": ["080001", "080001", None, "250001", "280001", "280001"],
            "status_label": [
                "IN_SERVICE",
                "OUT_OF_SERVICE",
                "IN_SERVICE",
                "POWER_OFF",
                "IN_SERVICE",
                "OUT_OF_SERVICE",
            ],
            "events": [3, 1, 7, 2, 9, 3],
        }
    )
    wide = kpis.pivot_status(long)
    assert list(wide.columns) == [
        "postal_code",
        *STATUS_LABELS.values(),
        "events",
        "in_service_share",
        "out_of_service_share",
    ]
    # 1/4 and 3/12 tie on out-of-service share: the busier code first; then by events.
    assert wide["postal_code"].tolist() == ["280001", "080001", "(none)", "250001"]
    assert wide["events"].tolist() == [12, 4, 7, 2]
    assert wide["out_of_service_share"].tolist() == [0.25, 0.25, 0.0, 0.0]
    assert wide["in_service_share"].tolist() == [0.75, 0.75, 1.0, 0.0]
    assert wide.loc[1, "OUT_OF_SERVICE"] == 1
    assert kpis.pivot_status(long.iloc[0:0]).empty


def test_heatmap_rows_are_the_busiest_postal_codes_in_table_order():
    wide = kpis.pivot_status(
        pd.DataFrame(
            {
                "postal_code": ["a", "a", "b", "c", "d"],
                "status_label": [
                    "IN_SERVICE",
                    "OUT_OF_SERVICE",
                    "IN_SERVICE",
                    "IN_SERVICE",
                    "IN_SERVICE",
                ],
                "events": [1, 1, 5, 1, 4],
            }
        )
    )
    top = kpis.heatmap_rows(wide, 2)
    assert top["postal_code"].tolist() == ["b", "d"]  # the two busiest, in the table's order
    assert kpis.heatmap_rows(wide, 3)["postal_code"].tolist() == ["a", "b", "d"]


def test_known_operators_are_the_canonical_names():
    operators = kpis.known_operators()
    assert operators == sorted(operators)
    assert "Movistar" in operators
    assert "movistar" not in operators


def test_signal_merges_case_variants_like_the_csv(csv_engine, csv_batch, csv_valid_rows):
    signal = kpis.query_signal(csv_engine, csv_batch, Window()).set_index("operator")
    movistar = csv_valid_rows[csv_valid_rows["operator_key"] == "movistar"]
    assert set(movistar["operator"]) == {"Movistar", "movistar"}
    assert signal.loc["Movistar", "avg_signal_dbm"] == pytest.approx(movistar["signal_dbm"].mean())
    assert signal.loc["Movistar", "signal_samples"] == len(movistar) == 271
    assert "movistar" not in signal.index
    # Every reading with an operator: a banner's are in no operator's row (README).
    with_operator = csv_valid_rows["operator_key"].notna()
    assert signal["signal_samples"].sum() == with_operator.sum() == len(csv_valid_rows) - 9
    assert signal["signal_samples"].dtype == "int64"


def test_precision_matches_the_csv(csv_engine, csv_batch, csv_valid_rows):
    precision = kpis.query_precision(csv_engine, csv_batch, Window()).set_index("operator")
    yoigo = csv_valid_rows[csv_valid_rows["operator_key"] == "yoigo"]
    assert precision.loc["Yoigo", "avg_precision_m"] == pytest.approx(yoigo["precission"].mean())
    assert precision.loc["Yoigo", "precision_samples"] == len(yoigo)


def test_status_counts_per_postal_code_match_the_csv(csv_engine, csv_batch, csv_valid_rows):
    wide = kpis.pivot_status(kpis.query_status(csv_engine, csv_batch, Window())).set_index(
        "postal_code"
    )
    expected = csv_valid_rows["postal_code"].fillna(-1)
    counts = expected.value_counts()
    assert wide.loc["(none)", "events"] == counts[-1] == 223
    sample = csv_valid_rows["postal_code"].dropna().iloc[0]
    padded = str(int(float(sample))).zfill(6)
    assert wide.loc[padded, "events"] == counts[sample]
    assert wide["events"].sum() == len(csv_valid_rows)


@pytest.mark.parametrize(
    ("bucket", "floor"), [("minute", "min"), ("5 min", "5min"), ("hour", "h"), ("day", "D")]
)
def test_trend_buckets_match_the_csv_and_add_up_to_the_kpi(
    csv_engine, csv_batch, csv_valid_rows, bucket, floor
):
    trend = kpis.query_trend(csv_engine, csv_batch, Window(), bucket)
    kpi = run_kpi(csv_engine, "kpi_signal", Window(), csv_batch).set_index("operator")
    for operator, rows in trend.groupby("operator"):
        weighted = (rows["avg_signal_dbm"] * rows["signal_samples"]).sum()
        assert weighted / rows["signal_samples"].sum() == pytest.approx(
            kpi.loc[operator, "avg_signal_dbm"]
        )
    # Independently: the CSV's events per operator and bucket.
    expected = (
        csv_valid_rows.assign(
            bucket=csv_valid_rows["event_time"].dt.floor(floor),
            operator=csv_valid_rows["operator_key"].map(_canonical_names(csv_valid_rows)),
        )
        .groupby(["bucket", "operator"])
        .agg(events=("line", "size"), avg_signal_dbm=("signal_dbm", "mean"))
        .reset_index()
    )
    shown = trend[["bucket", "operator", "events", "avg_signal_dbm"]]
    pd.testing.assert_frame_equal(
        shown.sort_values(["bucket", "operator"], ignore_index=True),
        expected.sort_values(["bucket", "operator"], ignore_index=True),
        check_dtype=False,
    )


def test_trend_bucket_is_an_allowlisted_choice(csv_engine, csv_batch):
    with pytest.raises(ValueError, match="unknown trend bucket 'week'"):
        kpis.query_trend(csv_engine, csv_batch, Window(), "week")


def test_operator_filter_keeps_only_those_operators(csv_engine, csv_batch, csv_valid_rows):
    names = _canonical_names(csv_valid_rows)
    rows = csv_valid_rows.assign(operator=csv_valid_rows["operator_key"].map(names))
    chosen = Filters(operators=("Movistar", "Yoigo"))
    picked = rows[rows["operator"].isin(chosen.operators)]

    signal = kpis.query_signal(csv_engine, csv_batch, Window(), chosen).set_index("operator")
    assert signal.index.tolist() == ["Movistar", "Yoigo"]
    expected = picked.groupby("operator")["signal_dbm"].agg(["mean", "size"])
    assert signal["avg_signal_dbm"].tolist() == pytest.approx(expected["mean"].tolist())
    assert signal["signal_samples"].tolist() == expected["size"].tolist()

    precision = kpis.query_precision(csv_engine, csv_batch, Window(), chosen).set_index("operator")
    expected = picked.groupby("operator")["precission"].mean()
    assert precision["avg_precision_m"].tolist() == pytest.approx(expected.tolist())

    status = kpis.query_status(csv_engine, csv_batch, Window(), chosen)
    assert status["events"].sum() == len(picked)
    trend = kpis.query_trend(csv_engine, csv_batch, Window(), "hour", chosen)
    assert set(trend["operator"]) == {"Movistar", "Yoigo"}
    assert trend["events"].sum() == len(picked)


def test_postal_code_filter_reads_the_postal_partials(csv_engine, csv_batch, csv_valid_rows):
    names = _canonical_names(csv_valid_rows)
    rows = csv_valid_rows.assign(
        operator=csv_valid_rows["operator_key"].map(names),
        postal=csv_valid_rows["postal_code"].map(
            lambda code: "(none)" if pd.isna(code) else str(int(float(code))).zfill(6)
        ),
    )
    # The busiest real code, and the events that carried none.
    code = rows.loc[rows["postal"] != "(none)", "postal"].value_counts().index[0]
    chosen = Filters(postal_codes=(code, "(none)"))
    picked = rows[rows["postal"].isin(chosen.postal_codes)]
    assert picked["operator"].nunique() > 1

    signal = kpis.query_signal(csv_engine, csv_batch, Window(), chosen).set_index("operator")
    expected = picked.groupby("operator")["signal_dbm"].agg(["mean", "size"])
    assert signal.index.tolist() == expected.index.tolist()
    assert signal["avg_signal_dbm"].tolist() == pytest.approx(expected["mean"].tolist())
    assert signal["signal_samples"].tolist() == expected["size"].tolist()

    wide = kpis.pivot_status(kpis.query_status(csv_engine, csv_batch, Window(), chosen))
    assert sorted(wide["postal_code"]) == sorted(chosen.postal_codes)
    assert wide["events"].sum() == len(picked)

    both = Filters(operators=("Movistar",), postal_codes=(code,))
    movistar = picked[(picked["operator"] == "Movistar") & (picked["postal"] == code)]
    signal = kpis.query_signal(csv_engine, csv_batch, Window(), both)
    assert signal["signal_samples"].sum() == len(movistar)

    trend = kpis.query_trend(csv_engine, csv_batch, Window(), "5 min", chosen)
    assert trend["events"].sum() == len(picked)
    assert trend["avg_precision_m"].isna().all()
    # Gold keeps GPS precision and signal bands per operator only: no postal-code answer.
    assert kpis.query_precision(csv_engine, csv_batch, Window(), chosen).empty
    assert kpis.query_signal_bands(csv_engine, csv_batch, Window(), chosen).empty


def test_signal_bands_count_the_csv_readings_per_band(csv_engine, csv_batch, csv_valid_rows):
    names = _canonical_names(csv_valid_rows)
    rows = csv_valid_rows.assign(
        operator=csv_valid_rows["operator_key"].map(names),
        band=_bands(csv_valid_rows["signal_dbm"]),
    )
    expected = pd.crosstab(rows["operator"], rows["band"]).reindex(columns=list(kpis.BANDS))
    bands = kpis.query_signal_bands(csv_engine, csv_batch, Window()).set_index("operator")
    assert bands.index.tolist() == expected.index.tolist()
    for band in kpis.BANDS:
        assert bands[band].tolist() == expected[band].tolist(), band
    assert (bands[list(kpis.BANDS)].sum(axis=1) == bands["signal_samples"]).all()
    assert bands["signal_samples"].sum() == csv_valid_rows["operator_key"].notna().sum()


def test_choices_offer_every_operator_and_postal_code(csv_engine, csv_batch, csv_valid_rows):
    choices = kpis.query_choices(csv_engine, csv_batch, Window())
    assert choices["events"].sum() == len(csv_valid_rows)
    operators = kpis.operator_options(choices, chosen=["SOMEONE ELSE"])
    present = set(csv_valid_rows["operator_key"].dropna().map(_canonical_names(csv_valid_rows)))
    assert operators == sorted({*present, "SOMEONE ELSE"})
    codes = kpis.postal_code_options(choices, chosen=["999999"])
    assert codes[0] == "(none)"  # the busiest: 223 events carried no postal code
    assert len(codes) == csv_valid_rows["postal_code"].nunique() + 2
    assert codes[-1] == "999999"


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_through_the_filters_is_inert(csv_engine, csv_batch, text):
    for filters in (Filters(operators=(text,)), Filters(postal_codes=(text,))):
        assert kpis.query_signal(csv_engine, csv_batch, Window(), filters).empty
        assert kpis.query_status(csv_engine, csv_batch, Window(), filters).empty
        assert kpis.query_trend(csv_engine, csv_batch, Window(), "hour", filters).empty
    assert kpis.query_precision(csv_engine, csv_batch, Window(), Filters(operators=(text,))).empty
    assert kpis.query_signal_bands(
        csv_engine, csv_batch, Window(), Filters(operators=(text,))
    ).empty
    # Nothing was dropped or changed.
    assert home.query_headline(csv_engine, csv_batch, Window()).events == 994
    assert queries.committed_batch(csv_engine) == csv_batch
