"""The dedup index (glue_job.dedup): what it holds, against a plain Python model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from glue_job.dedup import SeenEvents

START = datetime(2026, 12, 4, 10, 30, tzinfo=UTC)
keys = st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(-5, 5), max_size=40)


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.tuples(keys, st.integers(0, 30)), max_size=12), probe=keys)
def test_the_index_holds_exactly_the_keys_added_within_the_horizon(batches, probe):
    """Batches of keys (repeats within and across batches included) arrive over hours; the
    index answers as a set of the keys of the horizon's hours would, and each hour's keys
    stay sorted without repeats."""
    horizon = timedelta(hours=6)
    seen, model = SeenEvents(horizon=horizon), {}
    moment = START
    for batch, minutes_later in batches:
        moment += timedelta(minutes=minutes_later * 10)
        seen.add(np.array(batch, dtype=np.int64), moment)
        hour = int(moment.timestamp()) // 3600
        model.setdefault(hour, set()).update(batch)
        oldest = int((moment - horizon).timestamp()) // 3600
        model = {h: ks for h, ks in model.items() if h >= oldest}
    held = set().union(*model.values()) if model else set()
    asked = np.array(probe + sorted(held)[:20], dtype=np.int64)
    assert seen.contains(asked).tolist() == [k in held for k in asked.tolist()]
    assert len(seen) == sum(len(ks) for ks in model.values())
    for bucket in seen.buckets.values():
        assert (bucket[1:] > bucket[:-1]).all()


def test_an_empty_index_and_an_empty_batch():
    seen = SeenEvents()
    assert seen.contains(np.array([1, 2], dtype=np.int64)).tolist() == [False, False]
    seen.add(np.array([], dtype=np.int64), START)
    assert seen.contains(np.array([], dtype=np.int64)).tolist() == []
    assert seen.contains(np.array([np.iinfo(np.int64).max], dtype=np.int64)).tolist() == [False]
