"""The viewers' relay (bench.wire_relay): it passes a dashboard's traffic on unchanged and
times each refresh from the rerun request to the run's end as the frames pass it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from bench.memory_bench import free_port
from bench.wire_relay import WireTimer, make_app

RUN_SECONDS = 0.3


def rerun() -> bytes:
    message = BackMsg()
    message.rerun_script.page_script_hash = "h-kpis"
    return message.SerializeToString()


def navigation(current: str) -> bytes:
    message = ForwardMsg()
    for page_hash, path in [("h-home", ""), ("h-kpis", "KPIs")]:
        page = message.navigation.app_pages.add()
        page.page_script_hash, page.url_pathname = page_hash, path
    message.navigation.page_script_hash = current
    return message.SerializeToString()


def finished() -> bytes:
    message = ForwardMsg()
    message.script_finished = ForwardMsg.FINISHED_SUCCESSFULLY
    return message.SerializeToString()


def test_a_refresh_is_timed_from_the_rerun_asked_to_the_run_finished():
    now = [0.0]
    timer = WireTimer(clock=lambda: now[0])
    heartbeat = BackMsg()
    heartbeat.app_heartbeat = True
    delta = ForwardMsg()
    delta.delta.new_element.markdown.body = "x"

    assert timer.received(finished()) is None  # a run nobody timed the start of
    for at, direction, payload in [
        (1.0, "sent", rerun()),
        (1.2, "sent", rerun()),  # asked again while running: the first request counts
        (1.3, "received", navigation("h-kpis")),
        (1.5, "sent", heartbeat.SerializeToString()),
        (1.6, "received", delta.SerializeToString()),
        (1.75, "received", finished()),
        (4.0, "sent", rerun()),
        (4.2, "received", navigation("h-home")),
        (4.5, "received", finished()),
    ]:
        now[0] = at
        getattr(timer, direction)(payload)
    timer.sent("a text frame")
    assert timer.runs == pytest.approx([0.75, 0.5])
    assert timer.pages == ["KPIs", ""]


def dashboard_stand_in() -> Starlette:
    """Answers a page with two cookies, 404s elsewhere, and a rerun on its websocket with
    a navigation message, then the run's end ``RUN_SECONDS`` later."""

    async def page(request):
        response = PlainTextResponse(f"page {request.url.path} {request.url.query}")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    async def missing(request):
        return PlainTextResponse("no such thing", status_code=404)

    async def stream(ws):
        await ws.accept(subprotocol="streamlit")
        assert ws.headers.get("cookie") == "a=1"
        while True:
            message = await ws.receive_bytes()
            if BackMsg.FromString(message).WhichOneof("type") == "rerun_script":
                await ws.send_bytes(navigation("h-kpis"))
                await asyncio.sleep(RUN_SECONDS)
                await ws.send_bytes(finished())

    return Starlette(
        routes=[
            Route("/KPIs", page),
            Route("/KPIs/_stcore/health", missing),
            WebSocketRoute("/_stcore/stream", stream),
        ]
    )


@contextmanager
def serving(app):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_relay_passes_pages_on_and_times_each_refresh_after_the_first(tmp_path):
    from websockets.sync.client import connect

    runs = (tmp_path / "runs.jsonl").open("a")
    with (
        serving(dashboard_stand_in()) as upstream,
        serving(make_app(f"127.0.0.1:{upstream}", runs)) as relay,
    ):
        with urllib.request.urlopen(f"http://127.0.0.1:{relay}/KPIs?x=1") as response:
            assert response.read() == b"page /KPIs x=1"
            assert response.headers.get_all("set-cookie")[:2] == [
                "a=1; Path=/; SameSite=lax",
                "b=2; Path=/; SameSite=lax",
            ]
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{relay}/KPIs/_stcore/health")
        assert (missing.value.code, missing.value.read()) == (404, b"no such thing")

        with connect(
            f"ws://127.0.0.1:{relay}/_stcore/stream",
            subprotocols=["streamlit", "xsrf-token"],
            additional_headers={"Cookie": "a=1"},
        ) as ws:
            assert ws.subprotocol == "streamlit"
            for _ in range(3):
                ws.send(rerun())
                assert ws.recv(timeout=10) == navigation("h-kpis")
                assert ws.recv(timeout=10) == finished()
    runs.close()
    timed = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert [run["page"] for run in timed] == ["KPIs", "KPIs"]  # the first load is not counted
    assert all(RUN_SECONDS <= run["seconds"] < RUN_SECONDS + 1.0 for run in timed)


def test_the_bench_reads_what_the_relay_wrote_naming_the_default_page_home(tmp_path):
    from bench.viewers_bench import read_answered

    runs = tmp_path / "runs.jsonl"
    runs.write_text('{"page": "", "seconds": 0.5}\n{"page": "Map", "seconds": 1.25}\n')
    assert read_answered(runs) == [
        {"page": "Home", "seconds": 0.5},
        {"page": "Map", "seconds": 1.25},
    ]
