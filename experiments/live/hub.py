"""One Redis subscription per web process for all its event streams: the hub the stream views listen through.

Each open stream (a run page, the queue page, a sweep page, an API client) used to open its own Redis connection
and pub/sub, and decode every message and encode its own server-sent-event bytes: with 200 streams of one run a
process held 200 sockets and did 200 decodes and encodes per event, and the pages waited behind them
(``bench/load.py --beside 200``). Here a process has ONE connection per event loop and Redis URL; a channel is
subscribed when its first listener arrives and unsubscribed when its last one leaves (counted), and one reader
task hands each message, decoded once, to its channel's listeners. The bytes of an event that is the same for
every listener are encoded once and shared (:meth:`Message.chunk`).

What the streams relied on stays true:

- :meth:`Hub.listen` returns once Redis has CONFIRMED the subscription to each channel, so a stream that catches up
  from the index afterwards loses no event published between its catch-up and its listening;
- when the connection drops, every listener ends (:class:`Gone`; its stream sends ``fallback`` and the page polls,
  which catches it up): no quiet reconnect past the events published meanwhile. The next listener connects anew;
- a listener that does not take its messages (its client does not read) never holds the others up: its backlog is
  bounded, and once full the listener ends (:class:`Gone`) and is dropped, rather than hold messages without end.

Nothing of Django in here: the views (``experiments.views.events``) give the URL and turn messages into events.
"""

from __future__ import annotations

import asyncio
import json
import os
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

# How long Redis may take to confirm a subscription before the stream is refused (503: the page polls).
CONFIRM_SECONDS = 5.0


class Gone(Exception):
    """A listener's events stopped (Redis went away, or it fell too far behind): its stream ends, the page polls."""


class Message:
    """One published message, decoded once and shared by every listener of its channel (read it, never change it).

    ``event`` is the JSON object published, or None when the message was not one."""

    __slots__ = ("channel", "event", "_chunks")

    def __init__(self, channel: str, data: Any) -> None:
        self.channel = channel
        try:
            event = json.loads(data)
        except (TypeError, ValueError):
            event = None
        self.event: dict[str, Any] | None = event if isinstance(event, dict) else None
        self._chunks: dict[str, bytes] = {}

    def chunk(self, key: str, encode: Callable[[], bytes]) -> bytes:
        """The bytes ``encode`` makes of this message, made once for all its listeners (``key`` names which)."""
        chunk = self._chunks.get(key)
        if chunk is None:
            chunk = self._chunks[key] = encode()
        return chunk


class Listener:
    """One stream's share of the hub: the messages of its channels, in order, at most ``backlog`` waiting."""

    def __init__(self, hub: Hub, channels: Iterable[str], backlog: int) -> None:
        self.hub, self.channels, self.backlog = hub, tuple(dict.fromkeys(channels)), backlog
        self.gone: str | None = None  # why the listener ended, once it has
        self._waiting: deque[Message] = deque()
        self._wake: asyncio.Future[None] | None = None

    async def next(self, timeout: float) -> Message | None:
        """The next message, or None after ``timeout`` seconds without one; raises :class:`Gone` once ended."""
        if not self._waiting and self.gone is None and timeout > 0:
            loop = asyncio.get_running_loop()
            wake = self._wake = loop.create_future()
            timer = loop.call_later(timeout, _wake, wake)
            try:
                await wake
            finally:
                timer.cancel()
                self._wake = None
        if self.gone is not None:
            raise Gone(self.gone)
        return self._waiting.popleft() if self._waiting else None

    async def close(self) -> None:
        """Leave the hub (a stream that ends, however it ends)."""
        self.hub.leave(self)

    def _offer(self, message: Message) -> bool:
        """Take a message from the reader; False when the backlog is full (the listener has then ended)."""
        if len(self._waiting) >= self.backlog:
            self._end(f"this stream fell {self.backlog} events behind")
            return False
        self._waiting.append(message)
        if self._wake is not None:
            _wake(self._wake)
        return True

    def _end(self, reason: str) -> None:
        if self.gone is None:
            self.gone = reason
        self._waiting.clear()  # a stream that ends sends none of them: its page catches up by polling
        if self._wake is not None:
            _wake(self._wake)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Hub:
    """The Redis connection of one event loop to one URL, and the listeners of each channel."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client: redis.asyncio.Redis | None = None
        self.pubsub: Any = None
        self.listeners: dict[str, set[Listener]] = {}
        # Per channel, the SUBSCRIBEs sent and not yet confirmed, and the future the listeners wait on until they
        # are: counted, so a confirmation of an earlier SUBSCRIBE (before an UNSUBSCRIBE) is not taken for a later.
        self._unconfirmed: dict[str, int] = {}
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # the reader and the unsubscribes, kept from the collector

    async def listen(self, channels: Iterable[str], backlog: int) -> Listener:
        """A listener of ``channels``, once Redis has confirmed them all. Raises a Redis error or OSError when Redis
        does not answer, :class:`Gone` when the connection dropped meanwhile, TimeoutError when no confirmation
        came within ``CONFIRM_SECONDS``."""
        listener = Listener(self, channels, backlog)
        loop = asyncio.get_running_loop()
        async with self._lock:
            if self.pubsub is None:
                self._connect()
            for channel in listener.channels:
                self.listeners.setdefault(channel, set()).add(listener)
            new = [channel for channel in listener.channels if channel not in self._confirmed]
            for channel in new:
                self._confirmed[channel] = loop.create_future()
                self._unconfirmed[channel] = self._unconfirmed.get(channel, 0) + 1
            waits = [self._confirmed[channel] for channel in listener.channels]
            if new:
                pubsub = self.pubsub
                try:
                    await pubsub.subscribe(*new)
                except (redis.exceptions.RedisError, OSError) as exc:
                    self._break(pubsub, f"Redis: {exc}")
                    raise
                except BaseException:  # this request was cancelled (its client left): the others listen on
                    self.leave(listener)
                    raise
                if pubsub is self.pubsub and self._reader is None:
                    self._reader = self._start(self._read(pubsub))
        try:
            await asyncio.wait_for(asyncio.gather(*(asyncio.shield(wait) for wait in waits)), CONFIRM_SECONDS)
        except BaseException:
            self.leave(listener)
            raise
        if listener.gone is not None:
            raise Gone(listener.gone)
        return listener

    def leave(self, listener: Listener) -> None:
        """``listener`` stops listening; a channel it was the last listener of is unsubscribed (in a task of its
        own: a stream cancelled while it closes still leaves)."""
        empty = []
        for channel in listener.channels:
            others = self.listeners.get(channel)
            if others is not None:
                others.discard(listener)
                if not others:
                    del self.listeners[channel]
                    empty.append(channel)
        if empty and self.pubsub is not None:
            self._start(self._unsubscribe(self.pubsub, empty))

    def _connect(self) -> None:
        # No retries: a dropped connection must end the streams (the pages then poll, which catches them up), not
        # be reconnected quietly past the events published meanwhile. Named, so CLIENT LIST shows whose it is.
        self.client = redis.asyncio.Redis.from_url(
            self.url, retry=Retry(NoBackoff(), 0), client_name=f"gymnos-stream-hub-{os.getpid()}"
        )
        self.pubsub = self.client.pubsub()

    def _start(self, work: Any) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _unsubscribe(self, pubsub: Any, channels: list[str]) -> None:
        async with self._lock:
            empty = [channel for channel in channels if channel not in self.listeners]
            if pubsub is not self.pubsub or not empty:
                return  # the connection was replaced, or listeners came back meanwhile
            for channel in empty:
                self._confirmed.pop(channel, None)
            try:
                await pubsub.unsubscribe(*empty)
            except (redis.exceptions.RedisError, OSError) as exc:
                self._break(pubsub, f"Redis: {exc}")

    async def _read(self, pubsub: Any) -> None:
        """The one reader of the connection: confirmations to the waiting listeners, messages to the listening."""
        try:
            while pubsub is self.pubsub:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                channel = message["channel"]
                channel = channel.decode() if isinstance(channel, bytes) else str(channel)
                if message["type"] == "message":
                    self._fan_out(Message(channel, message["data"]))
                elif message["type"] == "subscribe":
                    self._confirm(channel)
        except asyncio.CancelledError:
            self._break(pubsub, "the web process is stopping")
            raise
        except Exception as exc:  # noqa: BLE001 - whatever stops the one reader must end every stream (they poll)
            self._break(pubsub, f"Redis: {exc}")

    def _confirm(self, channel: str) -> None:
        left = self._unconfirmed.get(channel, 0) - 1
        if left > 0:
            self._unconfirmed[channel] = left
            return
        self._unconfirmed.pop(channel, None)
        confirmed = self._confirmed.get(channel)
        if confirmed is not None:
            _wake(confirmed)

    def _fan_out(self, message: Message) -> None:
        behind = [listener for listener in self.listeners.get(message.channel, ()) if not listener._offer(message)]
        for listener in behind:
            self.leave(listener)

    def _break(self, pubsub: Any, reason: str) -> None:
        """The connection ``pubsub`` is gone: its listeners end, and the next :meth:`listen` connects anew."""
        if pubsub is not self.pubsub:
            return
        client, self.client, self.pubsub, self._reader = self.client, None, None, None
        listeners = {listener for channel in self.listeners.values() for listener in channel}
        self.listeners.clear()
        for confirmed in self._confirmed.values():
            _wake(confirmed)  # the listeners waiting for their confirmation see that they are gone
        self._confirmed.clear()
        self._unconfirmed.clear()
        for listener in listeners:
            listener._end(reason)
        self._start(_close(pubsub, client))


async def _close(pubsub: Any, client: redis.asyncio.Redis | None) -> None:
    try:
        await pubsub.aclose()
        if client is not None:
            await client.aclose()
    except (redis.exceptions.RedisError, OSError):
        pass  # it is gone already


# The hubs of this process: one per running event loop (a connection belongs to its loop) and events URL.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Hub]] = weakref.WeakKeyDictionary()


def hub(url: str) -> Hub:
    """The hub of the running event loop for the Redis at ``url``."""
    hubs = _hubs.setdefault(asyncio.get_running_loop(), {})
    if url not in hubs:
        hubs[url] = Hub(url)
    return hubs[url]
