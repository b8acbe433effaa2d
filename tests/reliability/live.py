"""A real uvicorn server in a background thread, for tests that must go over real HTTP.

TestClient and httpx normalise URLs (``%2e%2e`` becomes ``..`` and is collapsed) and never
open a socket; these tests send raw request lines to a server on 127.0.0.1 instead.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

_UvicornServer = uvicorn.Server  # the real class, even where a test replaces uvicorn.Server

@contextmanager
def live_server(app, host: str = "127.0.0.1", port: int = 0,
                sock: socket.socket | None = None) -> Iterator[str]:
    """Serve ``app`` on ``host`` (a free port unless given), or on an already bound ``sock``;
    yields ``http://127.0.0.1:PORT``."""
    if sock is None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    port = sock.getsockname()[1]
    server = _UvicornServer(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def raw_request(
    base: str, method: str, target: str, *, headers: dict | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Send ``target`` exactly as given (no normalisation, no re-encoding)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()
