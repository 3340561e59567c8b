"""The live event streams (``experiments.views.events``) over a real ASGI server and a real Redis.

Events are published by the code paths that publish them in production (an epoch stored, a transition), and
read by a client of the stream as a browser's EventSource would read them.
"""

import json
import threading
import time
from collections.abc import Sequence
from typing import cast

import pytest
import requests
from django.utils import timezone

from experiments import live
from experiments.models import Execution, Experiment, ShareLink
from tests.folders import make_run
from tests.helpers import token_for
from tests.workers import flush, queues_at

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def events_redis(settings):
    """The events go through the test Redis (the queues' own, as in production)."""
    settings.RQ_QUEUES = queues_at()
    settings.GYMNOS_STREAM_HEARTBEAT_SECONDS = 1
    flush()
    yield
    flush()


class Events:
    """An event stream read as EventSource reads it: ``next()`` is ``(event, data, id)``."""

    def __init__(self, url, timeout=20, **headers):
        self.response = requests.get(url, stream=True, timeout=timeout, headers=headers)
        self.lines = (line.decode() for line in self.response.iter_lines())

    def next(self):
        event, data, event_id = "message", list[str](), None
        for line in self.lines:
            if line == "" and data:
                return event, json.loads("\n".join(data)), event_id
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line.startswith("id: "):
                event_id = line[4:]
        return None, None, None  # the stream ended

    def until(self, wanted):
        seen = []
        while True:
            event, data, event_id = self.next()
            seen.append(event)
            if event is None or event == wanted:
                return event, data, event_id, seen

    def close(self):
        self.response.close()


def logged_in_cookies(server_url, user, password):
    session = requests.Session()
    page = session.get(server_url + "/accounts/login/")
    assert page.status_code == 200
    session.post(
        server_url + "/accounts/login/",
        data={"username": user.username, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": server_url + "/accounts/login/"},
    )
    return "; ".join(f"{name}={value}" for name, value in session.cookies.items())


def running(execution):
    Execution.objects.filter(pk=execution.pk).update(status="running", finished_at=None, job_id="job-1")
    return Execution.objects.get(pk=execution.pk)


def later(action, delay=0.5):
    """Do ``action`` once the stream has opened (in a thread, as a worker would, on its own connection)."""

    def run():
        from django.db import connection

        try:
            action()
        finally:
            connection.close()

    timer = threading.Timer(delay, run)
    timer.start()
    return timer


def test_the_team_stream_sends_the_status_then_each_epoch_stored_then_the_end(asgi_server, trained, owner):
    execution = running(trained)
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
    history = {name: values for name, values in execution.histories.values_list("name", "values")}
    stream = Events(f"{asgi_server.url}/executions/{execution.pk}/events?after=15", Cookie=cookie)
    try:
        assert stream.response.headers["Content-Type"] == "text/event-stream"
        event, data, _ = stream.next()
        assert (event, data["status"], data["live"], data["epochs"]) == ("status", "running", True, 15)
        assert "running" in data["status_html"]
        grown: dict[str, Sequence[float]] = {name: [*values, 1.5] for name, values in history.items()}
        later(lambda: Execution.objects.record_epoch(execution.pk, grown, 20))
        event, data, event_id, _ = stream.until("epoch")
        assert (event, data["epoch"], event_id) == ("epoch", 16, "16")
        assert data["metrics"]["loss"] == 1.5
        event, data, _, _ = stream.until("status")
        assert (data["epochs"], data["epochs_total"]) == (16, 20)
        later(lambda: Execution.objects.finish(execution.pk, "the loss went to NaN"))
        event, data, _, _ = stream.until("status")
        assert (data["status"], data["live"], data["reason"]) == ("failed", False, "the loss went to NaN")
        assert stream.next()[0] == "end"
        assert stream.next()[0] is None  # and the stream closes: the page stops listening
    finally:
        stream.close()


def test_a_reconnecting_client_gets_the_epochs_it_missed_from_the_index(asgi_server, trained, owner):
    execution = running(trained)
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
    loss = dict(execution.histories.values_list("name", "values"))["loss"]
    stream = Events(f"{asgi_server.url}/executions/{execution.pk}/events", Cookie=cookie, **{"Last-Event-ID": "12"})
    try:
        assert stream.next()[0] == "status"
        caught_up = [stream.next() for _ in range(3)]
        assert [(event, data["epoch"], event_id) for event, data, event_id in caught_up] == [
            ("epoch", 13, "13"),
            ("epoch", 14, "14"),
            ("epoch", 15, "15"),
        ]
        assert [data["metrics"]["loss"] for _, data, _ in caught_up] == loss[12:15]
    finally:
        stream.close()


def test_streams_of_one_run_render_its_status_box_once_per_epoch_and_viewer(asgi_server, trained, owner, monkeypatch):
    """The status box after an epoch is rendered once for all the streams that show the run to the same viewer, not
    once per stream (200 streams of a run rendered it 40 times a second); a share link's visitor gets their own
    (no team actions in it)."""
    from experiments.views import events

    monkeypatch.setattr(events, "STATUS_AFTER_EPOCHS_SECONDS", 0)  # the box after every epoch, at once
    renders = []
    status = events.Source.status

    def counted(source, *args):
        renders.append(source.viewer)
        return status(source, *args)

    monkeypatch.setattr(events.Source, "status", counted)
    execution = running(trained)
    link = ShareLink.objects.create(kind=ShareLink.Kind.EXECUTION, execution=execution, created_by=owner)
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
    team = [Events(f"{asgi_server.url}/executions/{execution.pk}/events?after=15", Cookie=cookie) for _ in range(4)]
    visitor = Events(f"{asgi_server.url}/s/{link.token}/events?after=15")
    streams = [*team, visitor]
    try:
        assert [stream.next()[0] for stream in streams] == ["status"] * 5
        assert len(renders) == 5  # each stream's first box is its own
        grown: dict[str, Sequence[float]] = {
            name: [*values, 1.5] for name, values in execution.histories.values_list("name", "values")
        }
        later(lambda: Execution.objects.record_epoch(execution.pk, grown, 20))
        boxes = []
        for stream in streams:
            event, data, _, seen = stream.until("status")
            assert "epoch" in seen, seen
            assert data["epochs"] == 16
            boxes.append(data["status_html"])
        assert all("Cancel run" in box for box in boxes[:4])
        assert "Cancel run" not in boxes[4]
        assert len(renders) == 5 + 2  # one render for the team's four streams, one for the visitor
    finally:
        for stream in streams:
            stream.close()


def test_the_stream_is_refused_to_strangers_and_unknown_runs(asgi_server, trained, owner):
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
    anonymous = requests.get(f"{asgi_server.url}/executions/{trained.pk}/events", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302
    assert "/accounts/login/" in anonymous.headers["Location"]
    unknown = requests.get(f"{asgi_server.url}/executions/999999/events", headers={"Cookie": cookie}, timeout=10)
    assert unknown.status_code == 404


def test_a_share_links_stream_ends_when_the_link_is_revoked(asgi_server, trained, owner):
    execution = running(trained)
    link = ShareLink.objects.create(kind=ShareLink.Kind.EXECUTION, execution=execution, created_by=owner)
    stream = Events(f"{asgi_server.url}/s/{link.token}/events")
    try:
        event, data, _ = stream.next()
        assert (event, data["status"]) == ("status", "running")
        assert "Cancel" not in data["status_html"]  # a visitor sees no team actions
        later(lambda: ShareLink.objects.filter(pk=link.pk).update(revoked_at=timezone.now()))
        event, data, _, seen = stream.until("revoked")
        assert event == "revoked", seen
        assert stream.next()[0] is None
    finally:
        stream.close()
    assert requests.get(f"{asgi_server.url}/s/{link.token}/events", timeout=10).status_code == 404


def test_the_api_stream_takes_a_token(asgi_server, trained, owner, capsys):
    execution = running(trained)
    url = f"{asgi_server.url}/api/executions/{execution.pk}/events"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
    key = token_for(owner, capsys)
    stream = Events(url, Authorization=f"Bearer {key}")
    try:
        event, data, _ = stream.next()
        assert (event, data["status"]) == ("status", "running")
        later(lambda: Execution.objects.cancel(execution.pk))
        event, data, _, _ = stream.until("status")
        assert (data["status"], data["reason"]) == ("cancelled", "cancelled by a user")
        assert stream.next()[0] == "end"
    finally:
        stream.close()
    assert (
        requests.get(
            f"{asgi_server.url}/api/executions/999999/events", timeout=10, headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 404
    )


def test_without_redis_the_stream_answers_503_and_publishing_goes_on(
    asgi_server, trained, owner, settings, caplog, monkeypatch
):
    monkeypatch.setattr(live, "_publisher", live._Publisher())  # a process that has not yet seen Redis down
    settings.RQ_QUEUES = queues_at("redis://127.0.0.1:1/0?socket_connect_timeout=1")
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
    response = requests.get(f"{asgi_server.url}/executions/{trained.pk}/events", headers={"Cookie": cookie}, timeout=10)
    assert response.status_code == 503
    assert "poll" in response.text
    execution = running(trained)
    live.publish(execution.pk, live.STATUS, status="running", reason="")  # logged, not raised
    live.publish(execution.pk, live.STATUS, status="running", reason="")
    said = [record.getMessage() for record in caplog.records if "not published" in record.getMessage()]
    assert len(said) == 1  # once per outage, not once per event


def test_a_wsgi_server_answers_503_at_once_so_the_page_polls(live_server, trained, owner):
    """Under WSGI (pytest-django's live server, or a deployment on a WSGI server) a stream would be gathered
    whole before anything is sent, holding a thread for minutes."""
    cookie = logged_in_cookies(live_server.url, owner, "pw-olivia-123")
    response = requests.get(f"{live_server.url}/executions/{running(trained).pk}/events", headers={"Cookie": cookie},
                            timeout=10)  # fmt: skip
    assert response.status_code == 503
    assert "ASGI application" in response.text


def test_the_runs_stream_tells_the_queue_page_of_every_runs_changes(asgi_server, trained, owner):
    execution = running(trained)
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
    assert requests.get(f"{asgi_server.url}/events/runs", allow_redirects=False, timeout=10).status_code == 302
    stream = Events(f"{asgi_server.url}/events/runs", Cookie=cookie)
    try:
        later(lambda: Execution.objects.cancel(execution.pk))
        event, data, _, _ = stream.until("run")
        assert (event, data) == ("run", {"run": execution.pk, "kind": "status", "status": "cancelled", "epoch": None})
    finally:
        stream.close()


def test_the_runs_stream_leaves_out_the_runs_of_projects_the_user_may_not_see(asgi_server, root, trained, owner):
    from experiments.models import Project

    secret_run = make_run(root, "07-00-00__09-04-2019", dataset="iris")
    Experiment.objects.filter(pk=secret_run.experiment_id).update(project=Project.objects.create(name="secret"))
    hidden, shown = running(secret_run), running(trained)
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")  # of default only
    stream = Events(f"{asgi_server.url}/events/runs", Cookie=cookie)
    try:
        later(lambda: (Execution.objects.cancel(hidden.pk), Execution.objects.cancel(shown.pk)))
        event, data, _, _ = stream.until("run")
        assert (event, data["run"], data["status"]) == ("run", shown.pk, "cancelled")  # the secret run's came first
    finally:
        stream.close()


def test_under_asgi_a_download_is_streamed_not_gathered_whole(asgi_server, trained, owner, recwarn):
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
    url = f"{asgi_server.url}/experiments/{trained.experiment.name}/executions/{trained.folder_name}/download.zip"
    response = requests.get(url, headers={"Cookie": cookie}, timeout=30)
    assert response.status_code == 200
    assert response.content.startswith(b"PK")  # the whole folder as a zip
    gathered = [str(warning.message) for warning in recwarn if "must consume synchronous" in str(warning.message)]
    assert gathered == []  # Django gathers a sync stream whole under ASGI, and says so with this warning


def test_open_streams_do_not_hold_a_thread_each(asgi_server, trained, owner):
    """Each request's thread for Django's thread-sensitive calls is given back once its stream starts
    (gymnos_web/streaming.py): a server holding many streams runs a few threads, not one per stream."""
    execution = running(trained)
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
    url = f"{asgi_server.url}/executions/{execution.pk}/events?after=15"
    first = Events(url, Cookie=cookie)
    streams = [first]
    try:
        assert first.next()[0] == "status"  # the server's shared pool has its threads now
        before = threading.active_count()
        for _ in range(16):
            stream = Events(url, Cookie=cookie)
            streams.append(stream)
            assert stream.next()[0] == "status"
        grown = threading.active_count() - before
        assert grown < 8, f"{grown} more threads with 16 more streams open"
    finally:
        for stream in streams:
            stream.close()


def test_open_streams_do_not_hold_a_database_connection_each(asgi_server, trained, owner):
    """The request's thread given back when its stream starts closes its connection first: on PostgreSQL a hundred
    open pages held a hundred connections, and every other page then answered "too many clients"."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("counts PostgreSQL's connections (the PostgreSQL pass runs it)")

    def connections_open():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    execution = running(trained)
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
    url = f"{asgi_server.url}/executions/{execution.pk}/events?after=15"
    streams = [Events(url, Cookie=cookie)]
    try:
        assert streams[0].next()[0] == "status"
        before = connections_open()
        for _ in range(16):
            streams.append(Events(url, Cookie=cookie))
            assert streams[-1].next()[0] == "status"
        time.sleep(1)  # the given-back threads close their connections as they exit
        grown = connections_open() - before
        assert grown < 8, f"{grown} more database connections with 16 more streams open"
    finally:
        for stream in streams:
            stream.close()


def test_pages_served_under_asgi_do_not_keep_a_connection_per_request(asgi_server, trained, owner, settings):
    """Under ASGI each request runs in a thread of its own, so ``manage.py up``'s application closes a request's
    connection when it ends (``gymnos_web.streaming.per_request_connections``, called by ``gymnos_web.asgi``): kept
    for a minute, each one stayed with its ended thread, and a busy minute exhausted PostgreSQL's connections."""
    from django.db import connection as default
    from django.db.backends.postgresql.base import DatabaseWrapper

    from gymnos_web.streaming import per_request_connections

    connection = cast(DatabaseWrapper, default)

    if connection.vendor != "postgresql":
        pytest.skip("counts PostgreSQL's connections (the PostgreSQL pass runs it)")
    kept = {
        alias: (values["CONN_MAX_AGE"], values.get("OPTIONS", {}).get("pool"))
        for alias, values in settings.DATABASES.items()
    }
    per_request_connections()
    try:
        with connection.cursor() as cursor:
            count = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            cursor.execute(count)
            before = cursor.fetchone()[0]
            session = requests.Session()
            session.headers["Cookie"] = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
            for _ in range(20):
                assert session.get(f"{asgi_server.url}/executions/{trained.pk}/data.json", timeout=30).ok
            cursor.execute(count)
            grown = cursor.fetchone()[0] - before
        assert grown < 5, f"{grown} more database connections after 20 requests"
        # ... given back to this process's pool (gunicorn's web processes each have theirs), not closed: the next
        # request takes one from there instead of connecting again.
        assert connection.pool.get_stats()["requests_num"] >= 20
    finally:
        connection.close_pool()  # its connections closed, so the test database can be dropped
        for alias, (age, pool) in kept.items():
            settings.DATABASES[alias]["CONN_MAX_AGE"] = age
            settings.DATABASES[alias]["OPTIONS"].pop("pool", None)
            if pool is not None:
                settings.DATABASES[alias]["OPTIONS"]["pool"] = pool
