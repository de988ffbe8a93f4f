"""TelcoPulse dashboard (entry script): the shared sidebar once, then the page the user picked.

Run with ``streamlit run Home.py`` (or ``telcopulse dashboard``). ``start_app`` draws the
sidebar (time range, refresh) and takes the run's snapshot; ``st.navigation`` runs the
Home page below or one of ``pages/``: KPIs, Map and Pipeline Health.
"""

import streamlit as st

from backend.home import AlertRules, alert_span, query_alerts, query_headline_change
from backend.kpis import query_trend
from backend.windows import pick_bucket
from dashboard import charts, panels
from dashboard.page import Over, current_page, start_app


def home() -> None:
    """Headline KPIs and their change, freshness, alerts, and events over time."""
    page = current_page()
    st.title("TelcoPulse")
    st.markdown("Live mobile-network quality from the stream: signal, GPS precision and status.")
    panels.deployment_line(page.settings)

    page.require_snapshot()
    rules = AlertRules.from_settings(page.settings)
    alert_window = alert_span(rules, page.now)
    if page.batch >= 0:
        # Freshness, the headline and the alerts at once (Page.warm), then each from the cache.
        page.warm(
            page.freshness_load,
            (query_headline_change,),
            Over(alert_window, query_alerts, rules),
        )
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
    change = page.load("headline KPIs", query_headline_change)
    headline = None if change is None else change.current
    if headline is not None:
        if headline.is_empty:
            panels.empty_window(page.preset, freshness)
        else:
            panels.headline_cards(change)

    st.subheader(
        "Alerts",
        help=f"Whatever the time range: postal codes where out-of-service plus emergency-only "
        f"events exceed {rules.outage_share:.0%} of at least {rules.min_events} events in the "
        f"last {rules.outage_window_minutes} min, and operators whose average signal over the "
        f"last hour is more than {rules.signal_drop_db:g} dB below the hour before (at least "
        f"{rules.min_events} readings in each). Thresholds come from the TELCOPULSE_ALERT_* "
        "settings.",
    )
    alerts = page.load("alerts", query_alerts, rules, window=alert_window)
    if alerts is not None:
        panels.alert_list(alerts, rules)

    if headline is not None and not headline.is_empty:
        bucket = pick_bucket(headline.first_minute, headline.last_minute)
        st.subheader(f"Events per {bucket} by operator")
        trend = page.load("events trend", query_trend, bucket)
        if trend is not None:
            st.plotly_chart(charts.events_stacked(trend), width="stretch")
        page.show_query_times()

    st.page_link(
        KPIS,
        label="Signal, GPS precision and network status by operator and postal code",
        icon=":material/arrow_forward:",
    )


# The URL paths are those Streamlit gave pages/ scripts before there was one entry.
HOME = st.Page(home, title="Home", icon=":material/cell_tower:", default=True)
KPIS = st.Page("pages/1_KPIs.py", title="KPIs", icon=":material/bar_chart:", url_path="KPIs")
MAP = st.Page("pages/2_Map.py", title="Map", icon=":material/map:", url_path="Map")
HEALTH = st.Page(
    "pages/3_Pipeline_Health.py",
    title="Pipeline Health",
    icon=":material/monitor_heart:",
    url_path="Pipeline_Health",
)

navigation = st.navigation([HOME, KPIS, MAP, HEALTH])
start_app()
navigation.run()
