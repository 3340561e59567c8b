"""The ASGI application that ``manage.py up`` serves (uvicorn workers under gunicorn), or any ASGI server.

ASGI so that the live event streams (``experiments.views.events``, async views) wait on Redis without a thread
each; every other view is a plain sync view, which Django runs in a thread of its own per request. Each web
process starts its build checker here, as ``wsgi.py`` does.
"""

import os
import sys

import django

from gymnos_web import localstate
from gymnos_web.asgi_pages import PagesInOneThread
from gymnos_web.streaming import per_request_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymnos_web.settings")
localstate.prepare()  # var/ and its secret key, before the settings read them: every worker then shares one key
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application does, with our handler
application = PagesInOneThread()  # a page's middleware and view in one thread (gymnos_web/asgi_pages.py)
per_request_connections()

# The fork server that checks launched configs imports TensorFlow (seconds). A web process finishes
# booting (and so takes its first request) only once it is ready: no launch ever waits for it.
from experiments.jobs.launching import warm_up  # noqa: E402 - needs the application (settings, apps) loaded
from gymnos_web.warm import warm_pages  # noqa: E402 - the same

warm_up(wait=True)
warm_pages()  # the URLconf and the templates, before the first visitor (gymnos_web/warm.py)
# `manage.py up` announces the site once every web process has said this (on stderr: var/log/web.log).
print(f"Gymnos web process {os.getpid()} ready", file=sys.stderr, flush=True)
