"""Streamed responses stay streamed under ASGI.

Django's ASGI handler reads a streaming response whose content is a plain (sync) iterator into one list before
sending any of it: a checkpoint download, a run's folder as a zip (``experiments/views/downloads.py``) or a static
file would sit whole in the web process's memory. :class:`AsyncStreaming` (first in ``MIDDLEWARE``, so it sees
every response last) hands such content over one chunk at a time, each read in a worker thread. Under WSGI it
does nothing.

It also gives back, once a streamed response starts, the thread Django's ASGI handler keeps for the request's
thread-sensitive calls (the sync middleware's, the session's user lookup). Idle while an event stream stays open
for minutes, it would make one thread per open stream; :func:`release_request_thread` says how.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from asgiref.sync import SyncToAsync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import HttpRequest
from django.http.response import HttpResponseBase, StreamingHttpResponse

_DONE = object()


async def _pulled(content: Iterable[Any]) -> AsyncIterator[Any]:
    iterator = iter(content)
    pull = sync_to_async(lambda: next(iterator, _DONE), thread_sensitive=False)
    while (chunk := await pull()) is not _DONE:
        yield chunk


def release_request_thread() -> None:
    """Shut down the request's own thread for thread-sensitive calls, if it has one (an idle one, since the view
    has returned and its response streams).

    Django's ASGI handler runs each request in an ``asgiref`` ``ThreadSensitiveContext``, whose single-thread
    executor is made at the request's first thread-sensitive call and shut down only when the request ends. A
    later thread-sensitive call of the same request (``request_finished``, when the stream closes) makes a new
    one, shut down at the request's end as before. The streams' own database steps use the shared pool
    (``thread_sensitive=False``), not this thread, and close their connections after each step.

    The thread's database connection (opened by the session's user lookup) is closed first, in that thread: an
    idle thread per stream held one connection per stream, and ``bench/load.py --beside 200`` on PostgreSQL
    answered "too many clients" to every page.
    """
    context = SyncToAsync.thread_sensitive_context.get(None)
    if context is None:
        return
    executor = SyncToAsync.context_to_thread_executor.pop(context, None)
    if executor is not None:
        executor.submit(connections.close_all)  # its database connection goes with it: one a stream would exhaust
        executor.shutdown(wait=False)  # PostgreSQL's max_connections (100) at a hundred open pages


async def _released(content: AsyncIterator[Any]) -> AsyncIterator[Any]:
    release_request_thread()
    async for chunk in content:
        yield chunk


def _streamed(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    if isinstance(request, ASGIRequest) and isinstance(response, StreamingHttpResponse):
        content: Any = response.streaming_content
        response.streaming_content = _released(content if response.is_async else _pulled(content))
    return response


class AsyncStreaming:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._async_call(request)
        # Sync too under ASGI, where a sync-only middleware further in makes the chain sync: the ASGI handler
        # then reads the content this sets, asynchronously.
        return _streamed(request, self.get_response(request))

    async def _async_call(self, request: HttpRequest) -> HttpResponseBase:
        return _streamed(request, await self.get_response(request))


def per_request_connections() -> None:
    """Under ASGI, a request's database connection is closed when the request ends (``CONN_MAX_AGE`` 0), as
    Django's documentation asks of ASGI servers: each request runs in a thread of its own there (its
    ``ThreadSensitiveContext``), so a connection kept "for a minute" stayed with a thread that had ended, until
    the garbage collector found it. ``bench/load.py --beside 200`` on PostgreSQL had every page answer "too many
    clients" within seconds. The workers and loops, which reuse their threads, keep their connections.

    On PostgreSQL, "closed" gives it back to a pool of this process's own (psycopg's, through Django's ``"pool"``
    option): a new connection for each request (TCP, authentication, its settings) made every page slower under
    load. The pool opens at the process's first query, so each forked web process has its own, and holds at most
    ``GYMNOS_DB_POOL_MAX`` connections (requests beyond wait for one): web processes x that stays well under
    PostgreSQL's ``max_connections``. Connections are checked as they are taken, so a killed one is replaced."""
    for alias in settings.DATABASES.values():
        alias["CONN_MAX_AGE"] = 0
        if "postgresql" in alias["ENGINE"] and settings.DB_POOL_MAX > 0:
            alias.setdefault("OPTIONS", {})["pool"] = {
                "min_size": max(0, min(settings.DB_POOL_MIN, settings.DB_POOL_MAX)),
                "max_size": settings.DB_POOL_MAX,
                "timeout": settings.DB_POOL_TIMEOUT,
            }
