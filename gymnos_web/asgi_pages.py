"""Under ASGI, a page (a sync view) runs with all its middleware in one thread, as under WSGI.

Django's ASGI handler runs one middleware chain in async mode for every request. With sync middleware in it
(WhiteNoise's, ours) and a sync view, a page's request went from the event loop to a thread (the outer, sync
middleware), back to the loop (the inner, async-capable ones and the URL resolution), to the thread for the CSRF
check, back, to the thread for the view, back, and back again: each crossing waits its turn on the loop, which
the open event streams keep busy. :class:`PagesInOneThread` sends a request whose view is a sync one through a
second chain, loaded in sync mode, in one call to the request's thread (the same thread Django's handler would
have used for it: its ``ThreadSensitiveContext``); the async views (the event streams) keep the async chain. The
same middleware, in the same order, run on both.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, get_resolver


class PagesInOneThread(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()  # the async chain, for the async views
        self.pages = BaseHandler()
        self.pages.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if _async_view(request):
            return await super().get_response_async(request)
        return await sync_to_async(self.pages.get_response, thread_sensitive=True)(request)


def _async_view(request: HttpRequest) -> bool:
    """Whether the request's URL names an async view (a URL that names none goes the pages' way: a 404, a
    redirect to add a slash, a static file)."""
    try:
        match = get_resolver(getattr(request, "urlconf", None)).resolve(request.path_info)
    except Resolver404:
        return False
    return iscoroutinefunction(match.func)
