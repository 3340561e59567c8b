"""An ASGI server (uvicorn, as ``manage.py up`` runs it) in a thread of the test process, on the test database.

pytest-django's ``live_server`` is a WSGI server: it would gather an event stream whole before sending any of
it. Use it like ``live_server``: ``asgi_server.url``; the test needs ``django_db(transaction=True)``.
"""

import socket
import threading
import time

import pytest


class AsgiServer:
    def __init__(self) -> None:
        import uvicorn

        from gymnos_web.asgi_pages import PagesInOneThread

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(PagesInOneThread(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "AsgiServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the ASGI test server did not start within 30 s"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.server.force_exit = True  # open streams do not hold the test up
        self.thread.join(10)


@pytest.fixture
def asgi_server(transactional_db):
    server = AsgiServer().start()
    yield server
    server.stop()
