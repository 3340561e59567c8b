"""The streams of one web process listen through one Redis connection (``experiments.live.hub``), over a real ASGI
server and a real Redis: what Redis itself shows (CLIENT LIST, PUBSUB NUMSUB) and what each client reads.

Events are published as production publishes them (``live.publish``) and read as a browser's EventSource reads them.
"""

import asyncio
import socket
import time
from urllib.parse import urlsplit

import pytest
import redis

from experiments import live
from tests.helpers import token_for
from tests.test_live_stream import Events, events_redis, logged_in_cookies, running
from tests.workers import REDIS_URL

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["events_redis"]  # the autouse fixture: the events go through the test Redis

PASSWORD = "pw-olivia-123"


def the_redis() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


def stream_connections():
    """The stream connections Redis has open on the test database (other databases' are other test runs')."""
    db = the_redis().connection_pool.connection_kwargs.get("db", 0)
    return [
        client
        for client in the_redis().client_list()
        if client["name"].startswith("gymnos-stream") and int(client["db"]) == int(db)
    ]


def subscribers(channel):
    return dict(the_redis().pubsub_numsub(channel))[channel.encode()]


def until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def logs(stream, count):
    """The texts of the next ``count`` log events of ``stream`` (anything else it sends in between is skipped)."""
    texts: list[str] = []
    while len(texts) < count:
        event, data, _ = stream.next()
        assert event is not None, f"the stream ended after {len(texts)} log events"
        if event == "log":
            texts.append(data["text"])
    return texts


def test_streams_of_one_process_share_one_redis_connection_and_each_gets_every_event_once_in_order(
    asgi_server, trained, owner
):
    execution = running(trained)
    cookie = logged_in_cookies(asgi_server.url, owner, PASSWORD)
    url = f"{asgi_server.url}/executions/{execution.pk}/events?after=15"
    streams = [Events(url, Cookie=cookie) for _ in range(6)]
    queue_page = Events(f"{asgi_server.url}/events/runs", Cookie=cookie)
    try:
        assert [stream.next()[0] for stream in streams] == ["status"] * 6
        connections = stream_connections()
        assert len(connections) == 1, connections  # not one per stream (7 open)
        assert subscribers(live.run_channel(execution.pk)) == 1
        sent = [f"line {number}\n" for number in range(30)]
        for number, text in enumerate(sent):
            live.publish(execution.pk, live.LOG, text=text, end=number)
        for stream in streams:
            assert logs(stream, 30) == sent
        live.publish(execution.pk, live.STATUS, status="running", reason="")
        event, data, _, _ = queue_page.until("run")
        assert (event, data["run"]) == ("run", execution.pk)
        assert len(stream_connections()) == 1
    finally:
        for stream in [*streams, queue_page]:
            stream.close()


def test_the_last_stream_of_a_run_leaving_unsubscribes_its_channel(asgi_server, trained, owner):
    execution = running(trained)
    channel = live.run_channel(execution.pk)
    cookie = logged_in_cookies(asgi_server.url, owner, PASSWORD)
    url = f"{asgi_server.url}/executions/{execution.pk}/events?after=15"
    first, second = Events(url, Cookie=cookie), Events(url, Cookie=cookie)
    try:
        assert (first.next()[0], second.next()[0]) == ("status", "status")
        assert subscribers(channel) == 1
        first.close()
        time.sleep(2.5)  # the server sees the client gone at its next heartbeat (every second here)
        assert subscribers(channel) == 1  # the other stream still listens
        live.publish(execution.pk, live.LOG, text="still here\n", end=1)
        assert logs(second, 1) == ["still here\n"]
    finally:
        second.close()
    until(lambda: subscribers(channel) == 0)
    assert len(stream_connections()) == 1  # the connection stays for the next stream; only the channel went


def test_a_killed_redis_connection_ends_every_stream_with_fallback_and_a_new_stream_works(asgi_server, trained, owner):
    execution = running(trained)
    cookie = logged_in_cookies(asgi_server.url, owner, PASSWORD)
    url = f"{asgi_server.url}/executions/{execution.pk}/events?after=15"
    streams = [Events(url, Cookie=cookie) for _ in range(3)]
    queue_page = Events(f"{asgi_server.url}/events/runs", Cookie=cookie)
    try:
        assert [stream.next()[0] for stream in streams] == ["status"] * 3
        (connection,) = stream_connections()
        time.sleep(0.3)  # the queue page's stream has subscribed too
        the_redis().client_kill_filter(_id=connection["id"])
        for stream in [*streams, queue_page]:
            event, data, _, seen = stream.until("fallback")
            assert event == "fallback", seen
            assert "the page polls" in data["reason"]
            assert stream.next()[0] is None  # and the stream ends: the page polls, which catches it up
    finally:
        for stream in [*streams, queue_page]:
            stream.close()
    again = Events(url, Cookie=cookie)
    try:
        assert again.next()[0] == "status"
        live.publish(execution.pk, live.LOG, text="after the outage\n", end=1)
        assert logs(again, 1) == ["after the outage\n"]
        assert len(stream_connections()) == 1
    finally:
        again.close()


def test_a_client_that_never_reads_does_not_hold_up_the_others_and_its_stream_ends(
    asgi_server, trained, owner, capsys, monkeypatch
):
    """Its stream falls behind (the server's socket buffers full, then its backlog): it ends with ``fallback``, and
    the other clients get every event meanwhile."""
    from experiments.views import events

    monkeypatch.setattr(events, "STREAM_BACKLOG", 5)
    execution = running(trained)
    key = token_for(owner, capsys)
    address = urlsplit(asgi_server.url)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that reads nothing: a small window
    stalled.connect((address.hostname, address.port))
    stalled.sendall(
        f"GET /api/executions/{execution.pk}/events?after=15 HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: Bearer {key}\r\nConnection: close\r\n\r\n".encode()
    )
    reader = Events(f"{asgi_server.url}/api/executions/{execution.pk}/events?after=15", Authorization=f"Bearer {key}")
    try:
        assert reader.next()[0] == "status"
        time.sleep(0.5)  # the stalled client's stream listens too
        block = "x" * 32_000
        started = time.monotonic()
        for number in range(300):  # 9.6 MB: more than the server's socket buffers hold for the stalled client
            live.publish(execution.pk, live.LOG, text=f"{number} {block}\n", end=number)
            (text,) = logs(reader, 1)  # the reader keeps up; the stalled client falls behind
            assert text.split(" ", 1)[0] == str(number)
        assert time.monotonic() - started < 30
        stalled.settimeout(20)
        received = b""
        while chunk := stalled.recv(1 << 20):  # it reads at last: what was sent, then fallback, then the end
            received += chunk
        assert b"event: fallback" in received
        assert b"fell 5 events behind" in received
        assert b"event: log" in received
    finally:
        stalled.close()
        reader.close()


def test_a_stream_closed_before_its_first_event_was_asked_for_leaves_the_hub_and_unsubscribes(trained, owner, capsys):
    """A client that leaves after the view answered and before the server asked the stream for its first event:
    Django's handler closes the response with the events' generator never run. Its listener leaves the hub anyway
    (it stayed before, its channel subscribed for good on a run that publishes nothing more)."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncRequestFactory

    from experiments.live.hub import hub
    from experiments.views.events import api_execution_events

    key = token_for(owner, capsys)
    channel = live.run_channel(trained.pk)
    request = AsyncRequestFactory().get(
        f"/api/executions/{trained.pk}/events", headers={"Authorization": f"Bearer {key}"}
    )

    async def answered_then_closed():
        response = await api_execution_events(request, trained.pk)
        assert response.status_code == 200
        listening = len(hub(live.events_url()).listeners.get(channel, ()))
        subscribed = subscribers(channel)
        await sync_to_async(response.close)()  # what Django's handler does when the client has left
        for _ in range(100):  # the leave, handed to this loop, and its UNSUBSCRIBE
            await asyncio.sleep(0.02)
            if channel not in hub(live.events_url()).listeners and subscribers(channel) == 0:
                break
        return listening, subscribed, len(hub(live.events_url()).listeners.get(channel, ()))

    listening, subscribed, left = asyncio.run(answered_then_closed())
    assert (listening, subscribed) == (1, 1)  # the view listened before it answered
    assert left == 0
    assert subscribers(channel) == 0
