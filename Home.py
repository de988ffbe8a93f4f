"""Home page (dashboard entry script): headline KPIs, freshness and where the data lives.

Run with ``streamlit run Home.py`` (or ``telcopulse dashboard``); pages/ holds the rest.
"""

import streamlit as st

from backend.dashboard_data import pick_trend_unit
from dashboard import cache, charts, panels
from dashboard.page import start_page

page = start_page("Home", ":material/cell_tower:")

st.title("TelcoPulse")
st.markdown("Live mobile-network quality from the stream: signal, GPS precision and status.")
panels.deployment_line(page.settings)

page.require_snapshot()
freshness = page.freshness()
if freshness is not None:
    panels.freshness_badge(freshness)
page.require_data()

st.subheader(f"Headline · {panels.describe_window(page.preset, page.window)}")
headline = page.load("headline KPIs", cache.headline)
if headline is not None:
    if headline.is_empty:
        panels.empty_window(page.preset, freshness)
    else:
        panels.headline_cards(headline)
        unit = pick_trend_unit(headline.first_minute, headline.last_minute)
        st.subheader(f"Events per {unit} by operator")
        trend = page.load("events trend", cache.trend, unit)
        if trend is not None:
            st.plotly_chart(charts.events_stacked(trend), width="stretch")

st.page_link(
    "pages/1_KPIs.py",
    label="Signal, GPS precision and network status by operator and postal code",
    icon=":material/arrow_forward:",
)
