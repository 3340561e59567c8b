"""Shared fixtures: throwaway folders, a tiny config, an HTTP receiver, the test queues, the dashboard's actors."""

import os
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.db import connections
from django.test import Client
from hypothesis import settings as hypothesis_settings

from experiments.models import KeyCount, RunCount
from tests.asgi_server import asgi_server  # noqa: F401 - the fixture, for every test module
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.folders import SEED_METRICS, login, make_run
from tests.helpers import tiny
from tests.workers import flush, queues_at

# The property-based tests (hypothesis, and schemathesis on top of it) explore new inputs on every run on a
# developer's machine; under CI they draw the same inputs every time, so a run that fails can be run again and
# fails the same way, and a change cannot fail CI on an input no earlier run drew. ``--hypothesis-seed`` still wins.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session", autouse=True)
def _static_files_collected():
    """The static files collected (hashed names, gzipped copies) as ``manage.py up`` collects them: every page
    names its scripts from the manifest, and the live server serves them through whitenoise as production
    does. Collected once into a folder named by the files' fingerprint, which later runs reuse while the
    files do not change; servers the tests start (``manage.py up``) get it as GYMNOS_STATIC_ROOT."""
    from django.test.utils import override_settings

    from experiments import staticfiles

    root = Path(tempfile.gettempdir()) / f"gymnos-test-static-{staticfiles.sources_fingerprint()}"
    if not staticfiles.is_current(root):
        for old in root.parent.glob("gymnos-test-static-*"):  # the files as they were days ago
            if time.time() - old.stat().st_mtime > 2 * 24 * 3600:
                shutil.rmtree(old, ignore_errors=True)
        building = root.with_name(f"{root.name}.{os.getpid()}")
        with override_settings(STATIC_ROOT=building):
            staticfiles.collect()
        try:
            os.rename(building, root)
        except OSError:  # another test process collected the same files first
            shutil.rmtree(building, ignore_errors=True)
    with override_settings(STATIC_ROOT=root):
        os.environ["GYMNOS_STATIC_ROOT"] = str(root)
        yield root


def _as_is(application):
    return application


@pytest.fixture(scope="session")
def live_server(request, _static_files_collected):
    """pytest-django's live server, its static files served as ``manage.py up`` serves them: by whitenoise
    from the collected folder (gzipped, hashed names, far-future caching), not by Django's development
    handler, which would find each file afresh and send it whole."""
    from pytest_django.live_server_helper import LiveServer

    address = request.config.getvalue("liveserver") or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS") or "localhost"
    server = LiveServer(address, start=False)
    server.thread.static_handler = _as_is  # type: ignore[assignment]  # a wrapper maker, where a class is typed
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _cache_starts_empty():
    """Each test starts with an empty cache (the catalog cache's keys are ids a rolled-back test may reuse)."""
    cache.clear()


@pytest.fixture(autouse=True)
def _journals_start_empty(request):
    """A transactional test starts with empty count journals, as a fresh database does.

    The flush after the previous transactional test empties the tables in an order that changes from
    one test process to the next (Django lists them from a set): when the journals are emptied before
    the executions, the executions' delete triggers journal a -1 for each run into the next test.
    """
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        return
    request.getfixturevalue("transactional_db")
    RunCount.objects.all().delete()
    KeyCount.objects.all().delete()


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


class _ReceivingServer(ThreadingHTTPServer):
    received: list[dict[str, Any]]
    redirect_to: str | None
    root: str


class _Receiver(BaseHTTPRequestHandler):
    server: _ReceivingServer

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
    server = _ReceivingServer(("127.0.0.1", 0), _Receiver)
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


# --- the dashboard's actors, and real execution folders, indexed ------------------------------
# ``owner`` may launch and cancel (experiments.add_execution) and made the runs; ``teammate`` is
# another logged-in user without that permission; ``outsider`` is a client that is not logged in.


@pytest.fixture
def launcher():
    """An API user who may launch (ada)."""
    user = User.objects.create_user("ada", password="pw-ada-123")
    user.user_permissions.add(Permission.objects.get(codename="add_execution"))
    return user


@pytest.fixture
def viewer():
    """An API user who may only read (bob)."""
    return User.objects.create_user("bob", password="pw-bob-123")


@pytest.fixture
def owner(db):
    user = User.objects.create_user("olivia", password="pw-olivia-123")
    user.user_permissions.add(Permission.objects.get(codename="add_execution"))
    return user


@pytest.fixture
def teammate(db):
    return User.objects.create_user("tom", password="pw-tom-123")


@pytest.fixture
def owner_client(owner):
    return login(owner)


@pytest.fixture
def teammate_client(teammate):
    return login(teammate)


@pytest.fixture
def outsider():
    return Client()


@pytest.fixture
def root(tmp_path, settings):
    """The trainings root the dashboard reads (settings point at it)."""
    root = tmp_path / "trainings"
    root.mkdir()
    settings.GYMNOS_TRAININGS_ROOT = root
    return root


@pytest.fixture
def trained(root, owner):
    """A finished run with 15 epochs and the seed's three checkpoints."""
    return make_run(root, "06-16-31__08-04-2019", owner=owner)


@pytest.fixture
def seed_run(root, owner):
    """The seed's own example folder (4 epochs), as documented."""
    return make_run(root, "06-39-51__10-04-2019", metrics=SEED_METRICS, owner=owner)


@pytest.fixture
def browser(monkeypatch):
    """Debian's Chromium driven by Playwright (the browser tests fail, saying so, if it is missing)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium "
            "(apt-get install chromium; .ci/run does it)"
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls a test makes between
    # browser steps are plain synchronous ones, which Django would otherwise refuse there.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # While Playwright's loop runs, Django keeps this thread's connections apart from the ones
        # it made before (asgiref's Local): close the test's own before the loop stops, or a
        # PostgreSQL session is left open and the test database cannot be dropped.
        connections.close_all()


@pytest.fixture
def hooks_module(tmp_path, monkeypatch):
    """An importable module ``gymnos_test_hooks`` whose hooks append JSON lines to ``calls.jsonl``."""
    calls = tmp_path / "calls.jsonl"
    (tmp_path / "gymnos_test_hooks.py").write_text(
        "import json\n"
        f"CALLS = {str(calls)!r}\n"
        "def _write(**entry):\n"
        "    with open(CALLS, 'a') as handle:\n"
        "        handle.write(json.dumps(entry) + '\\n')\n"
        "def train_begin(logs):\n"
        "    _write(hook='on_train_begin')\n"
        "def epoch_end(epoch, logs):\n"
        "    _write(hook='on_epoch_end', epoch=epoch, keys=sorted(logs))\n"
        "def batch_end(batch, logs):\n"
        "    _write(hook='on_train_batch_end', batch=batch)\n"
        "def needs_three(epoch, logs, extra):\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "gymnos_test_hooks")
    yield calls
    sys.modules.pop("gymnos_test_hooks", None)
