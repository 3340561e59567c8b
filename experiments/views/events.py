"""Server-sent events of one run (``text/event-stream``): async views, so an open stream holds no thread.

``GET /executions/<id>/events`` (the team), ``GET /s/<token>/events`` (a share link's visitor: the run it shows,
until the link is revoked or expires) and ``GET /api/executions/<id>/events`` (an API token) send:

- ``status``: ``{"status", "live", "reason", "epochs", "epochs_total", "status_html"}``, first as the run is
  now, then on every transition and after epochs (the status box's progress and ETA), at most every
  ``STATUS_AFTER_EPOCHS_SECONDS`` for those;
- ``epoch`` (its SSE id: the epoch, from 1): ``{"epoch", "metrics"}``. On reconnect the browser sends the last
  id it saw as ``Last-Event-ID`` (a first connection may say ``?after=<epochs it has>``), and the epochs after
  it are sent from the index before anything new; more than ``CATCH_UP_EPOCHS`` missed: ``reload`` instead;
- ``log``: ``{"text", "end"}`` (``experiments.live.logs``); ``files``: a checkpoint or an evaluation was written;
  ``system``: a system sample (``{"time", "cpu_percent", ...}``) was written: the System panel reads it;
- ``end`` once the run has ended, ``revoked`` when a share link is no longer active, ``fallback`` when Redis
  went away (the page polls): the stream closes after each. A heartbeat comment every
  ``GYMNOS_STREAM_HEARTBEAT_SECONDS``; after ``GYMNOS_STREAM_SECONDS`` the stream ends and the browser reconnects.

``GET /events/runs`` sends ``run`` events of every run the user may see (the queue page, the experiment table);
``?runs=3,5,8``: of those runs only (the compare page); ``/sweeps/<id>/events`` (``sweep_events``): a sweep's.

A Redis that does not answer when the stream opens: 503, and the page polls. The streams of a web process listen
through one Redis connection of its own (``experiments.live.hub``): each message decoded once, the events that are
the same for every viewer encoded once; what depends on the viewer (the status box, permissions, a share link's
revocation, which runs a many-runs stream admits) stays per stream.
"""

from __future__ import annotations

import asyncio
import json
import math
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.handlers.wsgi import WSGIRequest
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from experiments import live
from experiments.access import get_active_share, get_execution_by_id_for_user, visible_executions
from experiments.comparison import parse_runs
from experiments.live.hub import Gone, Listener, Message, hub
from experiments.models import LIVE, ApiToken, Execution, MetricHistory, ShareLink
from experiments.views.executions import Links, status_context

# A client that missed more epochs than this reloads the page's data once rather than get them one by one.
CATCH_UP_EPOCHS = 100
# The status box after an epoch (its progress and ETA: a query and a template, per stream) at most this often per
# stream; an epoch's point goes out at once. 200 streams of a run whose epochs last 1 s rendered it 200 times a
# second, and the epochs queued behind the renders (bench/load.py --streams).
STATUS_AFTER_EPOCHS_SECONDS = 5.0
MAX_EVENT_ID = 10**9
# The messages a stream may have waiting for it (its client reads slower than the run publishes): past them the
# stream ends with ``fallback`` and its page catches up by polling, rather than hold messages without bound.
STREAM_BACKLOG = 500
# The status boxes after epochs, shared by the streams of one web process that show the same run to the same
# viewer: (run, epoch, viewer) -> its render, in flight or done; the newest this many kept. 200 streams of one run
# rendered it (queries and a template each) 40 times a second between them, and the pages waited behind them
# (bench/load.py --beside 200).
SHARED_STATUS_KEPT = 256
_shared_status: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], asyncio.Future[Any]]]
_shared_status = weakref.WeakKeyDictionary()


def _event(kind: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def _after(request: HttpRequest) -> int | None:
    """The last epoch the client has: ``Last-Event-ID`` (a reconnect), else ``?after=``; None when neither."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after")
    if raw is None or not raw.isdigit() or len(raw) > 10:
        return None
    return min(int(raw), MAX_EVENT_ID)


def _closing_connection(step: Callable[..., Any]) -> Callable[..., Any]:
    """A database step of a stream, in a worker thread: its connection closed after, as a request's would be
    (a stream lasts minutes; a thread per stream must not keep a database connection each)."""

    def run(*args: Any) -> Any:
        try:
            return step(*args)
        finally:
            connection.close()

    return sync_to_async(run, thread_sensitive=False)


class Source:
    """What one stream shows: one run, seen by the team or through a share link."""

    def __init__(self, request: HttpRequest, execution: Execution, share: ShareLink | None) -> None:
        self.request, self.pk, self.share = request, execution.pk, share
        self.status_at = 0.0  # when the stream last sent the status box (the loop's clock)
        self.status_due = math.inf  # when a status box held back after an epoch goes out
        self.epoch: int | None = None  # the last epoch the stream sent
        # Who sees the box: what it shows depends on the user (may they cancel?), the share link, and the CSRF
        # token its forms carry. Read from the request as sent (its user is read in a worker thread).
        cookies = request.COOKIES
        self.viewer = (
            share.pk if share is not None else None,
            cookies.get(settings.SESSION_COOKIE_NAME),
            cookies.get(settings.CSRF_COOKIE_NAME),
            request.headers.get("Authorization"),
        )

    def status(self, reason: str | None = None) -> dict[str, Any]:
        execution = Execution.objects.select_related("experiment", "launched_by").get(pk=self.pk)
        links = Links(execution, self.share)
        return {
            "status": execution.status,
            "live": execution.status in LIVE,
            "reason": execution.error if reason is None else reason,
            "epochs": execution.epochs,
            "epochs_total": execution.epochs_total,
            "status_html": render_to_string(
                "experiments/_partials/execution_status.html",
                status_context(self.request, execution, links),
                self.request,
            ),
        }

    async def status_after_epoch(self) -> dict[str, Any]:
        """The status box after the stream's last epoch: rendered once for all the streams of this process that
        show the run to the same viewer (the first to ask renders it; the others wait for that render)."""
        if self.epoch is None:
            return await _closing_connection(self.status)()
        renders = _shared_status.setdefault(asyncio.get_running_loop(), {})
        key = (self.pk, self.epoch, self.viewer)
        render = renders.get(key)
        if render is None:
            render = renders[key] = asyncio.ensure_future(_closing_connection(self.status)())
            while len(renders) > SHARED_STATUS_KEPT:
                del renders[next(iter(renders))]
        try:
            return await asyncio.shield(render)  # a stream that closes does not cancel the others' render
        except Exception:
            if renders.get(key) is render:
                del renders[key]  # the next stream tries again
            raise

    def catch_up(self, after: int | None) -> tuple[list[bytes], bool]:
        """The run as it is now (and the epochs after ``after``), and whether it has ended."""
        state = self.status()
        chunks = [_event("status", state)]
        epochs = state["epochs"]
        if after is not None and after < epochs:
            if epochs - after > CATCH_UP_EPOCHS:
                chunks.append(_event("reload", {"epochs": epochs}, epochs))
            else:
                chunks.extend(self._epochs(after, epochs))
        return chunks, not state["live"]

    def _epochs(self, after: int, epochs: int) -> list[bytes]:
        wanted = range(after + 1, epochs + 1)
        names = MetricHistory.objects.filter(execution_id=self.pk).values_list("name", flat=True)
        by_epoch: dict[int, dict[str, float | None]] = {epoch: {} for epoch in wanted}
        for name in names:
            for epoch, value in MetricHistory.objects.values_at(self.pk, name, wanted).items():
                by_epoch[epoch][name] = value
        return [_event("epoch", {"epoch": epoch, "metrics": by_epoch[epoch]}, epoch) for epoch in wanted]

    def still_allowed(self) -> bool:
        if self.share is None:
            return True
        try:
            get_active_share(self.share.token, ShareLink.Kind.EXECUTION)
        except Http404:
            return False
        return True


async def _listen(channels: list[str]) -> Listener | None:
    """A listener of ``channels`` on this process's hub, subscribed and confirmed (so a catch-up after it misses
    nothing); None when Redis does not answer."""
    try:
        return await hub(live.events_url()).listen(channels, STREAM_BACKLOG)
    except (redis.exceptions.RedisError, OSError, TimeoutError, Gone):
        return None


def _fallback(why: object) -> bytes:
    return _event("fallback", {"reason": f"live events stopped ({why}); the page polls"})


def _without_kind(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != "kind"}


async def _translate(source: Source, message: Message, ended: list[bool]) -> AsyncIterator[bytes]:
    """A Redis message as the events a page reads; ``ended[0]`` set when the run has ended. The events that are the
    same for every viewer are encoded once for all the process's streams (``Message.chunk``).

    An epoch goes out before the status box that follows it is rendered (a query and a template): its point
    reaches the chart first."""
    event = message.event
    if event is None:
        return
    kind = event.get("kind")
    if kind == live.LOG or kind == live.FILES:
        yield message.chunk(kind, lambda: _event(kind, _without_kind(event)))
    elif kind == live.EPOCH:
        epoch = event.get("epoch")
        source.epoch = epoch if isinstance(epoch, int) else None
        yield message.chunk(kind, lambda: _event("epoch", _without_kind(event), source.epoch))
        now = asyncio.get_running_loop().time()
        if now - source.status_at >= STATUS_AFTER_EPOCHS_SECONDS:
            source.status_at = now
            yield _event("status", await source.status_after_epoch())
        else:
            source.status_due = min(source.status_due, source.status_at + STATUS_AFTER_EPOCHS_SECONDS)
    elif kind == live.SYSTEM:
        yield message.chunk(kind, lambda: _event("system", event.get("sample") or {}))
    elif kind == live.STATUS:
        state = await _closing_connection(source.status)(event.get("reason"))
        source.status_at, source.status_due = asyncio.get_running_loop().time(), math.inf
        ended[0] = not state["live"]
        yield _event("status", state)


async def _events(source: Source, listener: Listener, after: int | None) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    try:
        yield b"retry: 2000\n\n"
        chunks, over = await _closing_connection(source.catch_up)(after)
        for chunk in chunks:
            yield chunk
        ended = [over]
        deadline = loop.time() + settings.GYMNOS_STREAM_SECONDS
        beat = loop.time() + settings.GYMNOS_STREAM_HEARTBEAT_SECONDS
        source.status_at = loop.time()
        while not ended[0] and loop.time() < deadline:
            wait = min(beat, source.status_due) - loop.time()
            message = await listener.next(max(0.05, wait))
            if message is not None:
                async for chunk in _translate(source, message, ended):
                    yield chunk
            if not ended[0] and loop.time() >= source.status_due:  # the status box held back after an epoch
                source.status_at, source.status_due = loop.time(), math.inf
                yield _event("status", await source.status_after_epoch())
            if loop.time() >= beat:
                # Only a share link can be revoked: a team or API stream asks nothing (no thread, no query).
                if source.share is not None and not await _closing_connection(source.still_allowed)():
                    yield _event("revoked", {"reason": "this share link was revoked or has expired"})
                    return
                yield b": heartbeat\n\n"
                beat = loop.time() + settings.GYMNOS_STREAM_HEARTBEAT_SECONDS
        if ended[0]:
            yield _event("end", {})
    except Gone as gone:
        yield _fallback(gone)
    finally:
        await listener.close()


class Runs:
    """Which runs a many-runs stream sends: those ``user`` may see (of their projects), only ``ids`` when given
    (the compare page's runs). A subclass may listen to more ``channels`` and pass their events on (``other``)."""

    def __init__(self, user: Any, ids: list[int] | None = None) -> None:
        self.user, self.ids = user, None if ids is None else frozenset(ids)
        self.channels = [live.RUNS_CHANNEL]

    def admits(self, run: Any) -> bool:
        """Whether a run's events go out (a database read: in a worker thread, once per run per stream)."""
        if not isinstance(run, int) or (self.ids is not None and run not in self.ids):
            return False
        return visible_executions(self.user).filter(pk=run).exists()

    def other(self, event: dict[str, Any], seen: dict[Any, bool]) -> tuple[list[bytes], bool]:
        """An event of another channel: the chunks to send, and whether the stream ends after them."""
        return [], False


def _run_event(event: dict[str, Any]) -> bytes:
    return _event("run", {key: event.get(key) for key in ("run", "kind", "status", "epoch")})


async def _runs_message(runs: Runs, message: Message, seen: dict[Any, bool], ended: list[bool]) -> AsyncIterator[bytes]:
    """One Redis message of a many-runs stream as the events it sends; ``ended[0]`` set when the stream ends."""
    event = message.event
    if event is None:
        return
    if message.channel != live.RUNS_CHANNEL:
        chunks, ended[0] = runs.other(dict(event), seen)  # a copy: the message is every listener's
        for chunk in chunks:
            yield chunk
        return
    run = event.get("run")
    if run not in seen:
        seen[run] = await _closing_connection(runs.admits)(run)
    if seen[run]:
        yield message.chunk("run", lambda: _run_event(event))


async def _runs_events(listener: Listener, runs: Runs) -> AsyncIterator[bytes]:
    """The status changes and epochs of the runs ``runs`` admits, as ``run`` events (``{"run", "kind", "status",
    "epoch"}``): the pages that list runs read their data again on them. Whether a run is admitted is asked once
    per run per stream. Nothing to catch up: a page reads its data when the stream opens."""
    loop = asyncio.get_running_loop()
    seen: dict[Any, bool] = {}
    ended = [False]
    try:
        yield b"retry: 2000\n\n"
        deadline = loop.time() + settings.GYMNOS_STREAM_SECONDS
        beat = loop.time() + settings.GYMNOS_STREAM_HEARTBEAT_SECONDS
        while loop.time() < deadline:
            message = await listener.next(max(0.05, beat - loop.time()))
            if message is not None:
                async for chunk in _runs_message(runs, message, seen, ended):
                    yield chunk
                if ended[0]:
                    yield _event("end", {})
                    return
            if loop.time() >= beat:
                yield b": heartbeat\n\n"
                beat = loop.time() + settings.GYMNOS_STREAM_HEARTBEAT_SECONDS
    except Gone as gone:
        yield _fallback(gone)
    finally:
        await listener.close()


def _unavailable(why: str) -> HttpResponse:
    return HttpResponse(f"Live events are unavailable: {why}; poll instead.\n", status=503, content_type="text/plain")


class EventStream(StreamingHttpResponse):
    """A stream of events whose listener leaves the hub when the response is closed, however it ends.

    The events' generator closes the listener in its ``finally``, but only once it has started: a client that
    leaves after the view returned and before the first event was asked for gets its response closed (Django's
    handler does it) with the generator never run, and its listener stayed in the hub, its channel subscribed, for
    good on a run that publishes nothing more. ``close`` runs in a thread of Django's: the leave is handed to the
    listener's event loop. Leaving twice does nothing."""

    def __init__(self, events: AsyncIterator[bytes], listener: Listener | None = None) -> None:
        super().__init__(events, content_type="text/event-stream")
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"  # a proxy (nginx) passes each event on at once
        self.listener = listener
        self.loop = asyncio.get_running_loop()

    def close(self) -> None:
        if self.listener is not None:
            try:
                self.loop.call_soon_threadsafe(self.listener.hub.leave, self.listener)
            except RuntimeError:  # the loop is closed: its hub went with it
                pass
        super().close()


def _refused(request: HttpRequest) -> HttpResponse | None:
    """503 under a WSGI server, which would gather the whole stream before sending any of it (holding a thread)."""
    if isinstance(request, WSGIRequest):
        return _unavailable("they need the ASGI application (manage.py up serves it)")
    return None


async def stream(request: HttpRequest, execution: Execution, share: ShareLink | None = None) -> HttpResponseBase:
    """The event stream of ``execution`` (access already checked), or 503 when Redis does not answer or the server
    is a WSGI one."""
    refused = _refused(request)
    if refused is not None:
        return refused
    listener = await _listen([live.run_channel(execution.pk)])
    if listener is None:
        return _unavailable("Redis does not answer")
    return EventStream(_events(Source(request, execution, share), listener, _after(request)), listener)


async def runs_stream(request: HttpRequest, runs: Runs) -> HttpResponseBase:
    """The stream of the runs ``runs`` admits (access checked run by run), or 503 as :func:`stream`."""
    refused = _refused(request)
    if refused is not None:
        return refused
    listener = await _listen(runs.channels)
    if listener is None:
        return _unavailable("Redis does not answer")
    return EventStream(_runs_events(listener, runs), listener)


@login_required
@require_GET
async def runs_events(request: HttpRequest) -> HttpResponseBase:
    """``GET /events/runs``: the status changes and epochs of every run the user may see (the queue page and the
    experiment table listen); ``?runs=3,5,8``: of those runs only (the compare page)."""
    ids = parse_runs(request) if "runs" in request.GET else None
    return await runs_stream(request, Runs(await request.auser(), ids))


@login_required
@require_GET
async def execution_events(request: HttpRequest, execution_id: int) -> HttpResponseBase:
    user = await request.auser()
    execution = await _closing_connection(get_execution_by_id_for_user)(user, execution_id)
    return await stream(request, execution)


@require_GET
async def shared_events(request: HttpRequest, token: str) -> HttpResponseBase:
    link = await _closing_connection(get_active_share)(token, ShareLink.Kind.EXECUTION)
    return await stream(request, link.execution, link)


@require_GET
async def api_execution_events(request: HttpRequest, execution_id: int) -> HttpResponseBase:
    """``GET /api/executions/{id}/events`` with ``Authorization: Bearer <key>``: the same stream."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    user = await _closing_connection(ApiToken.user_for)(key.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        return HttpResponse(
            '{"detail": "Unauthorized: send Authorization: Bearer <key> (manage.py api_token prints one)"}',
            status=401,
            content_type="application/json",
        )
    execution = await _closing_connection(get_execution_by_id_for_user)(user, execution_id)
    return await stream(request, execution)
