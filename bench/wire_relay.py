"""A loopback relay that times the dashboard's answers as they leave it (bench).

``make viewers`` points its browsers here rather than at the dashboard. Page loads, scripts
and health checks are passed through as they are; each session's websocket is relayed frame
by frame, and a ``WireTimer`` per connection times every refresh from the browser's rerun
request reaching the relay to the dashboard's ``script_finished`` reaching it back. The
relay runs in a process of its own at normal priority, so the figure is the dashboard's
answer, queueing behind the other sessions included, whatever state the browsers that asked
are in. (The DevTools protocol's websocket frame events are no substitute: Chromium emits
them from Blink's ``InspectorNetworkAgent::DidReceiveWebSocketMessage`` and
``DidSendWebSocketMessage``, in the page's renderer, stamped ``base::TimeTicks::Now()`` when
the renderer gets to the frame (``third_party/blink/renderer/core/inspector/
inspector_network_agent.cc``), and the bench runs 20 renderers at the lowest CPU priority.)

Each timed refresh is written to ``--runs`` as a JSON line ``{"page", "seconds"}``, the
page being the address of the one that ran (``""`` for the app's default page). A
connection's first run is its page's first load and is not counted.

Usage:

    .venv/bin/python -m bench.wire_relay --upstream 8501 --port 8601 --runs runs.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.web.server.starlette.starlette_server_config import (
    DEFAULT_WEBSOCKET_PING_INTERVAL,
    DEFAULT_WEBSOCKET_PING_TIMEOUT,
)

STREAM_PATH = "/_stcore/stream"
# Hop-by-hop headers (RFC 9110, 7.6.1) and what the relay recomputes: not passed on.
HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "content-length",
    "host",
}


class WireTimer:
    """Times refreshes on one websocket: from a ``rerun_script`` the browser sent to the
    ``script_finished`` the server sent back (seconds, in ``runs``). A rerun asked while one
    is pending does not restart the clock. ``pages`` holds each run's page: the address
    (``url_pathname``, ``""`` for the default page) of the page the server's ``navigation``
    message said it ran."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.runs: list[float] = []
        self.pages: list[str] = []
        self.page = ""
        self._asked: float | None = None

    def sent(self, payload: bytes | str) -> None:
        message = _parse(BackMsg, payload)
        rerun = message is not None and message.WhichOneof("type") == "rerun_script"
        if rerun and self._asked is None:
            self._asked = self.clock()

    def received(self, payload: bytes | str) -> float | None:
        """The refresh this frame finished, in seconds, if it finished one."""
        message = _parse(ForwardMsg, payload)
        kind = None if message is None else message.WhichOneof("type")
        if kind == "navigation":
            self.page = next(
                (
                    page.url_pathname
                    for page in message.navigation.app_pages
                    if page.page_script_hash == message.navigation.page_script_hash
                ),
                self.page,
            )
        if kind != "script_finished" or self._asked is None:
            return None
        seconds = self.clock() - self._asked
        self.runs.append(seconds)
        self.pages.append(self.page)
        self._asked = None
        return seconds


def _parse(message_type, payload: bytes | str):
    """A websocket frame's Streamlit message (its frames are binary protobuf), else None."""
    if not isinstance(payload, bytes):
        return None
    message = message_type()
    message.ParseFromString(payload)
    return message


def make_app(upstream: str, runs: IO[str]) -> Starlette:
    """The relay to ``upstream`` (``host:port``), writing each timed refresh to ``runs``."""

    async def stream(browser: WebSocket) -> None:
        timer = WireTimer()
        cookie = browser.headers.get("cookie")
        async with websockets.connect(
            f"ws://{upstream}{STREAM_PATH}",
            subprotocols=browser.scope.get("subprotocols") or None,
            origin=f"http://{upstream}",
            additional_headers={"Cookie": cookie} if cookie else None,
            # As patient as the browser: a dashboard busy with 20 first loads took over
            # the client's default 10 s to answer a handshake.
            open_timeout=None,
            max_size=None,
            ping_interval=None,
        ) as dashboard:
            await browser.accept(subprotocol=dashboard.subprotocol)

            async def to_dashboard() -> None:
                while True:
                    frame = await browser.receive()
                    if frame["type"] == "websocket.disconnect":
                        return
                    payload = frame.get("bytes") or frame.get("text") or b""
                    timer.sent(payload)
                    await dashboard.send(payload)

            async def to_browser() -> None:
                async for payload in dashboard:
                    if timer.received(payload) is not None and len(timer.runs) > 1:
                        runs.write(json.dumps({"page": timer.pages[-1], "seconds": timer.runs[-1]}))
                        runs.write("\n")
                        runs.flush()
                    if isinstance(payload, bytes):
                        await browser.send_bytes(payload)
                    else:
                        await browser.send_text(payload)

            tasks = [asyncio.create_task(to_dashboard()), asyncio.create_task(to_browser())]
            with contextlib.suppress(WebSocketDisconnect, websockets.ConnectionClosed):
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the browser closed it
            await browser.close()

    async def http(request: Request) -> Response:
        forward = urllib.request.Request(
            f"http://{upstream}{request.url.path}"
            + (f"?{request.url.query}" if request.url.query else ""),
            data=await request.body() or None,
            method=request.method,
            headers={k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS},
        )
        status, headers, body = await asyncio.to_thread(_fetch, forward)
        response = Response(body, status_code=status)
        for name, value in headers:  # a list: Set-Cookie may come more than once
            response.headers.append(name, value)
        return response

    return Starlette(
        routes=[
            WebSocketRoute(STREAM_PATH, stream),
            Route("/{path:path}", http, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
        ]
    )


def _fetch(request: urllib.request.Request) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, end-to-end headers and body of ``request`` (an error status is an answer)."""
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, _end_to_end(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _end_to_end(error.headers), error.read()


def _end_to_end(headers) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() not in HOP_HEADERS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", type=int, required=True, help="the dashboard's port")
    parser.add_argument("--port", type=int, required=True, help="the port to serve on")
    parser.add_argument("--runs", type=Path, required=True, help="append timed refreshes here")
    args = parser.parse_args(argv)
    with args.runs.open("a") as runs:
        uvicorn.run(
            make_app(f"127.0.0.1:{args.upstream}", runs),
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            ws_max_size=2**31 - 1,
            # Keep-alive pings to the browser as the dashboard's own server sends them
            # (Streamlit's Starlette server: every 30 s, a browser silent for 30 s more is
            # dropped), not uvicorn's default 20 s and 20 s, which was stricter with the
            # browsers than the dashboard is.
            ws_ping_interval=DEFAULT_WEBSOCKET_PING_INTERVAL,
            ws_ping_timeout=DEFAULT_WEBSOCKET_PING_TIMEOUT,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
