"""backend.queries: named parameters, macros and the KPI filters' parameters."""

from __future__ import annotations

from backend.queries import Filters


def test_filters_bind_each_list_as_text_parameters():
    filters = Filters(operators=[" Yoigo", "Movistar", "", "Movistar"], postal_codes=("  ",))
    assert filters.operators == ("Movistar", "Yoigo")
    assert filters.postal_codes == ()
    # Each list in four parameters that concatenate to it (Athena's 1,024-character limit).
    assert filters.params() == {
        "operators": ["Movistar\nYoigo", "", "", ""],
        "postal_codes": ["", "", "", ""],
    }
    assert Filters().is_empty
    assert Filters(postal_codes=["080193"]) == Filters(postal_codes=("080193",))
