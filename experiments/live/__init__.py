"""Live events: what a run does, published through Redis as it happens, for the pages' streams.

One module owns the channel names and the event shapes; the publishers (the work horse's epoch reporting and
log, the lifecycle's transitions, the RemoteMonitor receiver, sync) call :func:`publish`, and the stream views
(``experiments.views.events``) listen, all the streams of a web process through one subscription
(``experiments.live.hub``).

Every event is one JSON object on the channel ``gymnos:run:<execution id>`` (and a copy of the status changes
and epochs on ``gymnos:runs``, for the pages that list runs: the queue page)::

    {"kind": "status", "run": 7, "status": "failed", "reason": "…"}          a transition (reason: the run's error)
    {"kind": "epoch", "run": 7, "epoch": 3, "metrics": {"loss": 0.4, …}}    an epoch stored (epoch from 1)
    {"kind": "log", "run": 7, "text": "…\\n", "end": 4096}                 log lines, batched (end: the log's size)
    {"kind": "files", "run": 7, "what": "checkpoint" | "evaluation"}      a file the page lists was written
    {"kind": "system", "run": 7, "sample": {"time": 5.0, "cpu_percent": …}}  a system sample written (the run
                                                                              page's System panel reads it)

A sweep's events go on ``gymnos:sweep:<sweep id>`` (:func:`publish_sweep`; the sweep page listens)::

    {"kind": "trial", "sweep": 3, "run": 7, "number": 2, "status": "queued"}   a trial's run was queued
    {"kind": "trial", "sweep": 3, "run": 7, "number": 2, "status": "succeeded", "value": 0.41, "best": true}
                                                  a trial ended and was told to the study (best: a new best)
    {"kind": "sweep", "sweep": 3, "status": "finished"}                      the sweep ended

**Pub/sub, not streams.** The folder and the index are the truth and a client that (re)connects catches up from
the index (its epochs after the ``Last-Event-ID`` it sends, the status as it is now; its log from the offset it
has): so Redis needs to keep nothing. Pub/sub costs nothing while nobody listens, holds no memory per run and needs
no trimming; a stream (XADD) would be a second, bounded copy of what the index already holds, and a client would
still have to fall back to the index for anything trimmed away. What pub/sub loses (a message while a client
reconnects, everything while Redis restarts) is exactly what the catch-up gives back.

**Publishing never raises into training or a request**: a Redis that is down is logged once (and once more when it
answers again), and the run goes on; the pages then fall back to polling.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any

import redis
from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest

log = logging.getLogger(__name__)

RUNS_CHANNEL = "gymnos:runs"
STATUS, EPOCH, LOG, FILES, SYSTEM = "status", "epoch", "log", "files", "system"
KINDS = frozenset({STATUS, EPOCH, LOG, FILES, SYSTEM})
TRIAL, SWEEP = "trial", "sweep"
SWEEP_KINDS = frozenset({TRIAL, SWEEP})


def run_channel(pk: int) -> str:
    """The channel of one run's events: ``gymnos:run:7``."""
    return f"gymnos:run:{int(pk)}"


def sweep_channel(pk: int) -> str:
    """The channel of one sweep's trials: ``gymnos:sweep:3``."""
    return f"gymnos:sweep:{int(pk)}"


def events_url() -> str:
    """The Redis the events go through: the queues' own (so the embedded Redis of ``manage.py up`` serves both)."""
    return str(settings.RQ_QUEUES["default"]["URL"])


class _Publisher:
    """One Redis client per process and URL, and the "Redis is down" note said once per outage."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # the training thread, the heartbeat and a log line may publish at once
        self.clients: dict[str, redis.Redis] = {}
        self.down = False

    def client(self) -> redis.Redis:
        url = events_url()
        with self.lock:
            if url not in self.clients:
                self.clients[url] = redis.Redis.from_url(url)
            return self.clients[url]

    def send(self, channels: list[str], message: str) -> None:
        try:
            connection = self.client()
            for channel in channels:
                connection.publish(channel, message)
        except (redis.exceptions.RedisError, OSError) as exc:
            if not self.down:
                log.warning("Live events are not published (the pages poll meanwhile): Redis: %s", exc)
            self.down = True
            return
        if self.down:
            log.warning("Live events are published again: Redis answers")
            self.down = False


_publisher = _Publisher()


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def publish(pk: int, kind: str, **fields: Any) -> None:
    """Publish one event of run ``pk`` (shapes in the module's docstring); never raises.

    >>> publish(7, STATUS, status="running", reason="")
    """
    if kind not in KINDS:
        raise ValueError(f"unknown live event kind {kind!r}: expected one of {sorted(KINDS)}")
    if kind == EPOCH:  # NaN and infinity are not JSON: the index keeps them as null, so does the event
        fields["metrics"] = {name: _finite(value) for name, value in fields.get("metrics", {}).items()}
    elif kind == SYSTEM:
        fields["sample"] = {name: _finite(value) for name, value in fields.get("sample", {}).items()}
    message = json.dumps({"kind": kind, "run": int(pk), **fields})
    channels = [run_channel(pk), *([RUNS_CHANNEL] if kind in (STATUS, EPOCH) else [])]
    _publisher.send(channels, message)


def publish_sweep(pk: int, kind: str, **fields: Any) -> None:
    """Publish one event of sweep ``pk`` (``trial`` or ``sweep``, shapes in the module's docstring); never raises."""
    if kind not in SWEEP_KINDS:
        raise ValueError(f"unknown sweep event kind {kind!r}: expected one of {sorted(SWEEP_KINDS)}")
    if "value" in fields:
        fields["value"] = _finite(fields["value"])
    _publisher.send([sweep_channel(pk)], json.dumps({"kind": kind, "sweep": int(pk), **fields}))


def streams_served(request: Any) -> bool:
    """Whether ``request`` came through the ASGI application, which serves the streams (under a WSGI server they
    answer 503 at once): a page served by WSGI polls without trying them."""
    return not isinstance(request, WSGIRequest)
