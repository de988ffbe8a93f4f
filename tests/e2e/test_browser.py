"""Real browser (dashboard): every page of the running app in headless Chromium.

Starts ``streamlit run Home.py`` over a lake the real job built, opens each page
with Playwright driving Debian's ``/usr/bin/chromium`` (no browser download),
fails on an exception, an error banner or a blank chart, and saves a full-page
screenshot of each clean page to ``build/screenshots/``; ``make docs`` copies them to
``docs/screenshots/``, where the README shows them.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from helpers import PROJECT_ROOT, build_output, free_port
from streamlit.source_util import page_icon_and_name, page_sort_key

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # No calls home: the test must behave the same offline.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}
START_TIMEOUT_S = 60
SETTLE_TIMEOUT_S = 60
QUIET_S = 1.0  # the status widget must stay gone this long: a rerun can follow a run at once

# Plotly's drawn marks: bars, lines and markers are SVG paths inside a trace group, heatmaps
# an <image>, pies slices; scattergl draws on a canvas. Empty traces have zero-size boxes.
COUNT_MARKS_JS = """(chart) => {
    const marks = chart.querySelectorAll(
        'g.trace path, g.trace image, g.hm image, g.slice path, g.trace text, canvas.gl-canvas');
    let drawn = 0;
    for (const mark of marks) {
        const box = mark.getBoundingClientRect();
        if (box.width > 0 || box.height > 0) drawn += 1;
    }
    return drawn;
}"""

# While a map's canvas is photographed, hide what deck.gl and Streamlit lay over it (zoom
# buttons, toolbar, tooltip): what is left is the layers themselves.
CANVAS_ONLY_CSS = """
[data-testid="stDeckGlJsonChart"] * { visibility: hidden !important; }
[data-testid="stDeckGlJsonChart"] canvas { visibility: visible !important; }
"""


def app_pages() -> list[tuple[str, str]]:
    """(screenshot name, URL path) of Home and of each script in pages/, as Streamlit names it."""
    scripts = sorted((PROJECT_ROOT / "pages").glob("*.py"), key=page_sort_key)
    pages = [("home", "")]
    for script in scripts:
        _, name = page_icon_and_name(script)  # what Streamlit puts in the URL: 2_Map.py -> Map
        pages.append((name.lower(), name))
    return pages


@contextlib.contextmanager
def serve_app(csv_lake: Path, log_dir: Path, **settings: str):
    """The real app, served over the CSV lake with ``settings`` (TELCOPULSE_* variables);
    its log is printed if it fails to start."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELCOPULSE_")}
    env.update(
        TELCOPULSE_HOME=str(csv_lake.parent),
        # No auto-refresh rerun in the middle of a check or a screenshot.
        TELCOPULSE_REFRESH_SECONDS="600",
        # Nothing listens there, so the health page's stream check fails fast and locally.
        TELCOPULSE_EMULATOR_PORT=str(free_port()),
        **settings,
    )
    log_path = log_dir / "streamlit.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "Home.py",
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(port),
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, server, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def app_url(csv_lake, tmp_path_factory):
    """The app with its default settings (the CARTO basemap)."""
    with serve_app(csv_lake, tmp_path_factory.mktemp("streamlit")) as url:
        yield url


def wait_for_health(url: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"streamlit did not answer {url}/_stcore/health in {START_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (or apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def wait_until_settled(page) -> None:
    """Wait until the main block has its title (or an exception), no script run is going and
    no element is still a skeleton (charts load their code lazily)."""
    page.wait_for_selector(
        '[data-testid="stMain"] h1, [data-testid="stMain"] [data-testid="stException"]',
        timeout=SETTLE_TIMEOUT_S * 1000,
    )
    busy = page.locator(
        '[data-testid="stStatusWidget"], [data-testid="stMain"] [data-testid="stSkeleton"]'
    )
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < QUIET_S:
        if time.monotonic() > deadline:
            pytest.fail(f"{page.url} was still running after {SETTLE_TIMEOUT_S} s")
        if busy.count():
            quiet_since = time.monotonic()
        page.wait_for_timeout(100)


def show_whole_lake(page) -> None:
    """Pick the "all" time range: the CSV lake holds yesterday, outside the default window."""
    time_range = page.locator(".st-key-tp_range")
    if time_range.count():
        time_range.get_by_text("all", exact=True).click()
        wait_until_settled(page)


def blank_charts(page) -> list[int]:
    """Indexes of the page's visible Plotly charts that hold no drawn mark (a chart in a
    tab that is not selected has no size at all: ``charts_in_every_tab`` shows it)."""
    charts = page.locator('[data-testid="stPlotlyChart"]')
    return [
        i
        for i in range(charts.count())
        if charts.nth(i).is_visible() and charts.nth(i).evaluate(COUNT_MARKS_JS) == 0
    ]


def wait_for_charts(page) -> list[int]:
    """Plotly draws after the element arrives: give every chart a moment, then name blanks."""
    deadline = time.monotonic() + 15
    blank = blank_charts(page)
    while blank and time.monotonic() < deadline:
        page.wait_for_timeout(250)
        blank = blank_charts(page)
    return blank


def blank_charts_in_every_tab(page) -> list[int]:
    """Blank charts of the page as it is, then with each tab of each tab bar selected."""
    blank = set(wait_for_charts(page))
    tabs = page.locator('[data-testid="stMain"] [data-baseweb="tab"]')
    for i in range(tabs.count()):
        tabs.nth(i).click()
        page.wait_for_timeout(300)
        blank.update(wait_for_charts(page))
    if tabs.count():
        tabs.first.click()  # the screenshot shows each tab bar as the page opened
    return sorted(blank)


def blank_maps(page) -> list[int]:
    """Indexes of the page's deck.gl maps with no canvas, or a canvas of a single colour
    (no basemap offline, so a drawn layer is what puts a second colour there)."""
    from PIL import Image

    maps = page.locator('[data-testid="stDeckGlJsonChart"]')
    blank = []
    for i in range(maps.count()):
        canvases = maps.nth(i).locator("canvas")
        colours = 0
        for k in range(canvases.count()):
            if canvases.nth(k).evaluate("(c) => c.width * c.height"):
                pixels = canvases.nth(k).screenshot(style=CANVAS_ONLY_CSS)
                shot = Image.open(io.BytesIO(pixels))
                colours = max(colours, len(shot.getcolors(maxcolors=1 << 24) or ()))
        if colours < 2:
            blank.append(i)
    return blank


def save_full_page(page, path: Path) -> None:
    """Streamlit scrolls inside its main element, not the document, so a plain full-page
    screenshot stops at the viewport: grow the viewport to the content first."""
    height = page.evaluate(
        """() => {
            const main = document.querySelector('[data-testid="stMain"]');
            return Math.ceil(Math.max(main ? main.scrollHeight : 0, document.body.scrollHeight));
        }"""
    )
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(height, VIEWPORT["height"])})
    page.wait_for_timeout(500)  # let charts re-lay themselves out
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def check_page(page, name: str, script_errors: list[str]) -> list[str]:
    """Everything wrong with the rendered page, as one line each."""
    problems = []
    main = page.locator('[data-testid="stMain"]')
    for text in page.locator('[data-testid="stException"]').all_inner_texts():
        problems.append(f"exception: {text.strip()[:2000]}")
    for text in page.locator('[data-testid="stAlertContentError"]').all_inner_texts():
        problems.append(f"error banner: {text.strip()}")
    if "Traceback (most recent call last)" in main.inner_text():
        problems.append("a traceback is printed on the page")
    charts = page.locator('[data-testid="stPlotlyChart"]').count()
    blank = blank_charts_in_every_tab(page)
    if blank:
        problems.append(f"Plotly charts {blank} (of {charts}, 0-based) drew no mark")
    maps = page.locator('[data-testid="stDeckGlJsonChart"]').count()
    empty = blank_maps(page)
    if empty:
        problems.append(f"deck.gl maps {empty} (of {maps}) have no canvas or draw nothing")
    problems.extend(f"JavaScript error: {error}" for error in script_errors)
    return [f"{name}: {problem}" for problem in problems]


@contextlib.contextmanager
def opened(browser, url: str, name: str):
    """A fresh browser context on ``url``, settled and showing the whole lake; yields the
    page and everything wrong with it as it rendered (``check_page``)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda exc: script_errors.append(str(exc)))
    try:
        page.goto(url, wait_until="domcontentloaded")
        wait_until_settled(page)
        show_whole_lake(page)
        yield page, check_page(page, name, script_errors)
    finally:
        context.close()


def screenshot_path(tmp_path: Path, name: str, problems: list[str]) -> Path:
    """Only a clean page's screenshot can reach the README; a broken one is kept for a look."""
    return (tmp_path if problems else build_output("screenshots")) / f"{name}.png"


@pytest.mark.parametrize(("name", "url_path"), app_pages(), ids=[n for n, _ in app_pages()])
def test_page_renders_in_a_real_browser(app_url, browser, tmp_path, name, url_path):
    with opened(browser, f"{app_url}/{url_path}", name) as (page, problems):
        shot = screenshot_path(tmp_path, name, problems)
        save_full_page(page, shot)
    assert not problems, "\n".join([*problems, f"screenshot: {shot}"])


def test_a_table_downloads_as_csv_from_the_browser(app_url, browser, tmp_path):
    """The KPIs page's first table, downloaded as a viewer would: the CSV is made when the
    button is clicked (``panels.csv_download``), and holds the table's rows."""
    with opened(browser, f"{app_url}/KPIs", "KPIs") as (page, problems):
        assert not problems, "\n".join(problems)
        with page.expect_download() as download:
            page.locator('[data-testid="stDownloadButton"] button').first.click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
    frame = pd.read_csv(saved)
    assert saved.suffix == ".csv"
    assert {"operator", "avg_signal_dbm"} <= set(frame.columns)
    assert len(frame) == 13  # the capture's operators, the emergency-only banner left out


def tinted_share(page) -> float:
    """The share of the map canvas's pixels in a pale tint: what the translucent cells paint
    over an empty (or tile-less) map, where the points are saturated rings or discs."""
    from PIL import Image

    canvas = page.locator('[data-testid="stDeckGlJsonChart"] canvas').first
    shot = Image.open(io.BytesIO(canvas.screenshot(style=CANVAS_ONLY_CSS))).convert("RGB")
    pixels = list(shot.getdata())
    return sum(1 for p in pixels if 150 <= min(p) < 235) / len(pixels)


def pick_cell_size(page, label: str) -> None:
    page.locator(".st-key-tp_map_cells").get_by_text(label, exact=True).click()
    wait_until_settled(page)
    page.wait_for_timeout(1000)  # deck.gl draws on its next animation frames


def focus_on_busiest_postal_code(page) -> None:
    """Pick the code the page shows first in the postal-code box: the map zooms in on it."""
    title = page.get_by_text("Busiest postal code:").first.inner_text()
    code = title.split(":", 1)[1].strip()
    page.locator(".st-key-tp_map_pick").click()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    wait_until_settled(page)
    page.wait_for_timeout(1500)  # deck.gl draws on its next animation frames


@pytest.mark.parametrize("basemap", ["carto", "none"])
def test_the_map_draws_hexagons_with_and_without_a_basemap(csv_lake, browser, tmp_path, basemap):
    """Both TELCOPULSE_BASEMAP modes render the hexagons and the points without an error
    (offline here, so CARTO's tiles fail to load: the layers must not depend on them)."""
    with (
        serve_app(csv_lake, tmp_path, TELCOPULSE_BASEMAP=basemap) as url,
        opened(browser, f"{url}/Map", f"map ({basemap})") as (page, problems),
    ):
        page.wait_for_timeout(1000)
        with_cells = tinted_share(page)
        pick_cell_size(page, "off")
        points_only = tinted_share(page)
        pick_cell_size(page, "about 6 km")
        focus_on_busiest_postal_code(page)
        shot = screenshot_path(tmp_path, f"map-hexagons-{basemap}", problems)
        save_full_page(page, shot)
    assert not problems, "\n".join([*problems, f"screenshot: {shot}"])
    # The cells tint far more of the map than the points' anti-aliased edges alone.
    assert with_cells > 3 * points_only, (with_cells, points_only, shot)
