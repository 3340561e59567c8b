"""Under ASGI a page (a sync view) runs with its middleware in one call to its thread (``gymnos_web.asgi_pages``),
not crossing between the event loop and the thread at every sync middleware, the CSRF check and the view."""

import pytest
import requests
from asgiref.sync import SyncToAsync

from tests.test_live_stream import logged_in_cookies

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def per_request_connections(monkeypatch):
    """As ``gymnos_web.asgi`` serves: a request's connection closed when it ends (kept, it stays with the ended
    request's thread, and the test database could not be dropped after)."""
    from django.db import connections

    for alias in connections:
        monkeypatch.setitem(connections[alias].settings_dict, "CONN_MAX_AGE", 0)


@pytest.fixture
def crossings(monkeypatch):
    """How many times the server's event loop handed work to a thread (asgiref's ``sync_to_async``)."""
    counted = []
    call = SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        counted.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await call(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    return counted


def test_a_page_crosses_from_the_loop_to_its_thread_once(asgi_server, owner, trained, crossings):
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
    crossings.clear()
    page = requests.get(f"{asgi_server.url}/executions/{trained.pk}/data.json", headers={"Cookie": cookie}, timeout=30)
    assert page.status_code == 200
    assert page.json()  # the view ran, past the session, the user and the CSRF middleware
    # request_started's receivers, the page's middleware and view in one crossing, the response's close
    # (request_finished). Django's own handler crossed 5 times (the outer middleware, the CSRF check and the
    # view apart) and once from the thread back to the loop, for the inner middleware.
    # (the previous request's close may come after this one's start: not counted)
    assert [name for name in crossings if name != "HttpResponseBase.close"] == [
        "Signal.asend.<locals>.sync_send",
        "BaseHandler.get_response",
    ]


def test_pages_that_name_no_view_still_answer_through_the_middleware(asgi_server, owner, crossings):
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
    missing = requests.get(f"{asgi_server.url}/no-such-page/", headers={"Cookie": cookie}, timeout=30)
    assert missing.status_code == 404
    slash = requests.get(f"{asgi_server.url}/accounts/login", allow_redirects=False, timeout=30)
    assert (slash.status_code, slash.headers["Location"]) == (301, "/accounts/login/")  # CommonMiddleware's slash
