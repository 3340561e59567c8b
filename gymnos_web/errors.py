"""Error pages: JSON under /api/ (a client there never gets an HTML page), Django's pages elsewhere.

Also the answer when the job queue's Redis is down on a page that reads it (the admin's RQ pages):
503 saying so, rather than a 500; and 400 for a URL with a NUL byte, before any view reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from experiments.jobs.queues import describe_redis

log = logging.getLogger("experiments.errors")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _json_or(page: Callable[..., HttpResponse], status: int, detail: str) -> Callable[..., HttpResponse]:
    def handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        if _is_api(request):
            return JsonResponse({"detail": detail}, status=status)
        return page(request, exception) if exception is not None else page(request)

    return handler


bad_request = _json_or(defaults.bad_request, 400, "bad request")
permission_denied = _json_or(defaults.permission_denied, 403, "you are not allowed to do this")
page_not_found = _json_or(defaults.page_not_found, 404, "no such resource")
server_error = _json_or(defaults.server_error, 500, "internal error; the server logged its traceback")


class NulInURLMiddleware:
    """A URL whose path or query holds a NUL byte (``%00``) is refused, saying so, before any view reads it: 400
    for a page; under /api/, 422 in the shape the API answers a parameter of the wrong value with (ninja's).

    No name in Gymnos has one, and PostgreSQL refuses a NUL in a text parameter: a view looking up a project,
    experiment or run by such a name answered 500 there (the API's fuzzing found ``?project=%00``). One check for
    every route, rather than one in each view that takes a name."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        where = "path" if "\x00" in request.path else "query" if "\x00" in query or "%00" in query else None
        if where is None:
            return self.get_response(request)
        detail = f"the URL has a NUL byte (%00) in its {where}; no name in Gymnos has one"
        if _is_api(request):
            return JsonResponse({"detail": [{"type": "value_error", "loc": [where], "msg": detail}]}, status=422)
        return HttpResponse(f"Bad request: {detail}.", status=400, content_type="text/plain; charset=utf-8")


class RedisUnavailableMiddleware:
    """A page that needed the job queue while its Redis is down answers 503 and says so."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            return None
        log.warning("Redis is unavailable for %s: %s", request.path, exception)
        detail = f"the job queue is unavailable: cannot reach {describe_redis()} ({exception}); start it, then reload"
        if _is_api(request):
            return JsonResponse({"detail": detail}, status=503)
        body = (
            "<!doctype html><title>Redis is down</title><h1>The job queue's Redis is down</h1>"
            f"<p>{detail.replace('<', '&lt;')}</p><p><a href='/'>Back to the experiments</a></p>"
        )
        return HttpResponse(body, status=503)
