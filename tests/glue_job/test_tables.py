"""Lake layout (all layers): silver's event columns are the event contract's fields."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from glue_job.contract import FIELDS, H3_RESOLUTIONS, h3_column
from glue_job.schemas import EVENT_SCHEMA
from glue_job.tables import BRONZE, EVENT_COLUMNS, OPS, ROLLUPS, SILVER, TABLES

# How each contract kind is stored: numbers as doubles, the rest as themselves.
STORED_AS = {"string": "string", "timestamp": "timestamp", "int": "int", "number": "double"}


DERIVED = {"status_label", *(h3_column(r) for r in H3_RESOLUTIONS)}


def test_silver_holds_every_contract_field_with_its_type_in_contract_order():
    contract = [(f.name, STORED_AS[f.kind]) for f in FIELDS]
    columns = [column for column in EVENT_COLUMNS if column[0] not in DERIVED]

    assert columns == contract
    assert [name for name, _ in SILVER.columns[: len(EVENT_COLUMNS)]] == [
        name for name, _ in EVENT_COLUMNS
    ]


def test_the_event_columns_the_contract_lacks_are_the_status_label_and_the_h3_cells():
    names = [name for name, _ in EVENT_COLUMNS]

    assert set(names) - {f.name for f in FIELDS} == DERIVED
    assert names[names.index("status") + 1] == "status_label"
    assert dict(EVENT_COLUMNS)["status_label"] == "string"
    cells = [h3_column(r) for r in H3_RESOLUTIONS]
    after = names.index("longitude") + 1
    assert names[after : after + len(cells)] == cells == ["h3_res8", "h3_res6"]
    assert all(dict(EVENT_COLUMNS)[c] == "string" for c in cells)


def test_the_spark_schema_of_an_event_follows_the_columns():
    assert [(f.name, f.dataType.simpleString()) for f in EVENT_SCHEMA.fields] == [
        (name, "bigint" if kind == "long" else kind) for name, kind in EVENT_COLUMNS
    ]


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_a_partition_directory_covers_its_hour_day_or_month():
    """What the DuckDB engine lists by range (backend.engine): each level's period."""
    hours = BRONZE  # ingest_date / ingest_hour
    assert hours.partition_period({"ingest_date": "2026-12-01", "ingest_hour": "9"}) == (
        at(2026, 12, 1, 9),
        at(2026, 12, 1, 10),
    )
    assert hours.partition_period({"ingest_date": "2026-12-31"}) == (
        at(2026, 12, 31),
        at(2027, 1, 1),
    )
    day_rollup = next(iter(ROLLUPS.values()))["day"]  # event_month
    assert day_rollup.partition_period({"event_month": "2026-12-01"}) == (
        at(2026, 12, 1),
        at(2027, 1, 1),
    )
    assert OPS.partition_period({"batch_date": "2026-02-28"}) == (at(2026, 2, 28), at(2026, 3, 1))


@pytest.mark.parametrize(
    "values",
    [
        {"ingest_hour": "9"},  # an hour without its date
        {"ingest_date": "yesterday"},
        {"ingest_date": "2026-12-01", "ingest_hour": "24"},
        {},
    ],
)
def test_what_is_not_a_partition_value_is_refused(values):
    with pytest.raises(ValueError, match=r"^not a partition of bronze: "):
        BRONZE.partition_period(values)


def test_every_table_but_the_compaction_log_is_partitioned_by_time():
    untimed = {name for name, table in TABLES.items() if not table.partitioned_by_time}
    assert untimed == {"compactions"}
