"""Lake layout (all layers): silver's event columns are the event contract's fields."""

from __future__ import annotations

from glue_job.contract import FIELDS, H3_RESOLUTIONS, h3_column
from glue_job.schemas import EVENT_SCHEMA
from glue_job.tables import EVENT_COLUMNS, SILVER

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
