"""Shared fixtures: throwaway trainings and cache folders, a tiny config, an HTTP receiver, the test queues."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers import tiny
from tests.workers import flush, queues_at


@pytest.fixture
def trainings(tmp_path):
    return tmp_path / "trainings"


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def tiny_config():
    return tiny()


@pytest.fixture
def real_queues(settings):
    """The RQ queues on the test Redis (127.0.0.1:6379 db 13), empty before and after the test."""
    settings.RQ_QUEUES = queues_at()
    flush()
    yield
    flush()


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.server.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.server.redirect_to:
            self.send_response(307)
            self.send_header("Location", self.server.redirect_to)
        else:
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _serve():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    server.redirect_to = None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.root = f"http://127.0.0.1:{server.server_address[1]}"
    return server


@pytest.fixture
def receiver():
    """A real HTTP server on 127.0.0.1 (a free port) keeping every POST it receives.

    Set ``receiver.redirect_to`` to a URL and it answers each POST with a 307 there.
    """
    server = _serve()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def second_receiver():
    """Another such server, e.g. where ``receiver`` redirects to."""
    server = _serve()
    yield server
    server.shutdown()
    server.server_close()
