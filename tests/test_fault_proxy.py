"""tests/monitor_faults.py's FaultProxy, the harness of the monitor's and the page's fault tests: it must relay an
honest upstream faithfully, or a test of the monitor fails for the harness's sake (test_forked_checkpoint did, once
in a full run: the proxy reused a kept-alive connection the log server had just closed as idle)."""

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.monitor_faults import FaultProxy

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def serve_then_close_idle(listener: socket.socket, stop: threading.Event) -> None:
    """An upstream that answers one request per connection and keeps it alive, then closes it without answering the
    next one: what a client sees when its request crosses the server's close of an idle keep-alive connection (as
    uvicorn does after its keep-alive timeout). The close is made certain here; in a full run it is a race."""
    listener.settimeout(0.05)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        threading.Thread(target=answer_once, args=(conn,), daemon=True).start()


def answer_once(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(2)
        if conn.recv(65536):
            conn.sendall(ANSWER)
            conn.recv(65536)  # the next request on the kept-alive connection: closed unanswered


@pytest.fixture
def idle_closing_upstream() -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    thread = threading.Thread(target=serve_then_close_idle, args=(listener, stop), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_the_proxy_relays_every_request_when_the_upstream_closes_idle_connections(idle_closing_upstream: str) -> None:
    with FaultProxy(idle_closing_upstream) as proxy:
        for _ in range(3):
            response = httpx.get(proxy.url + "/checkpoint", timeout=5)
            assert (response.status_code, response.text) == (200, "ok")
