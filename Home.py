"""Home page (dashboard entry script): headline KPIs and their change, freshness, alerts.

Run with ``streamlit run Home.py`` (or ``telcopulse dashboard``); pages/ holds the rest.
"""

import streamlit as st

from backend.dashboard_data import AlertRules, alert_span, pick_bucket
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

st.subheader(
    f"Headline · {panels.describe_window(page.preset, page.window)}",
    help="Pick the time range in the sidebar. Each card compares it with the window of the "
    "same length just before it: signal in dB (up is better), GPS precision in metres (down "
    "is better), in-service share in percentage points, counts as plain differences.",
)
change = page.load("headline KPIs", cache.headline_change)
headline = None if change is None else change.current
if headline is not None:
    if headline.is_empty:
        panels.empty_window(page.preset, freshness)
    else:
        panels.headline_cards(change)

rules = AlertRules.from_settings(page.settings)
st.subheader(
    "Alerts",
    help=f"Whatever the time range: postal codes where out-of-service plus emergency-only "
    f"events exceed {rules.outage_share:.0%} of at least {rules.min_events} events in the last "
    f"{rules.outage_window_minutes} min, and operators whose average signal over the last hour "
    f"is more than {rules.signal_drop_db:g} dB below the hour before (at least "
    f"{rules.min_events} readings in each). Thresholds come from the TELCOPULSE_ALERT_* "
    "settings.",
)
alerts = page.load("alerts", cache.alerts, rules, window=alert_span(rules, page.now))
if alerts is not None:
    panels.alert_list(alerts, rules)

if headline is not None and not headline.is_empty:
    bucket = pick_bucket(headline.first_minute, headline.last_minute)
    st.subheader(f"Events per {bucket} by operator")
    trend = page.load("events trend", cache.trend, bucket)
    if trend is not None:
        st.plotly_chart(charts.events_stacked(trend), width="stretch")

st.page_link(
    "pages/1_KPIs.py",
    label="Signal, GPS precision and network status by operator and postal code",
    icon=":material/arrow_forward:",
)
