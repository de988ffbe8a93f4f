"""Pipeline Health page (dashboard): stream, freshness, batches, quarantine, reconciliation."""

import streamlit as st

from dashboard import health
from dashboard.page import current_page

page = current_page()

st.title("Pipeline health")
st.caption(
    "Is the stream job keeping up, and is every record accounted for? Figures come from "
    "`_ops` (one row per committed micro-batch) and the quarantine table. The time range "
    "selects batches by the time they started (UTC), which is also their records' ingest time."
)
page.require_snapshot()
health.show_stream(page)
page.require_data()
health.show_freshness(page)
health.show_batches(page)
page.show_query_times()
