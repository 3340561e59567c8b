"""The WSGI application (gunicorn, or any WSGI server). Each web process starts its build checker here."""

import os
import sys

from django.core.wsgi import get_wsgi_application

from gymnos_web import localstate

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymnos_web.settings")
localstate.prepare()  # var/ and its secret key, before the settings read them: every worker then shares one key
application = get_wsgi_application()

# The fork server that checks launched configs imports TensorFlow (seconds). A web process finishes
# booting (and so takes its first request) only once it is ready: no launch ever waits for it.
from experiments.jobs.launching import warm_up  # noqa: E402 - needs the application (settings, apps) loaded
from gymnos_web.warm import warm_pages  # noqa: E402 - the same

warm_up(wait=True)
warm_pages()  # the URLconf and the templates, before the first visitor (gymnos_web/warm.py)
# `manage.py up` announces the site once every web process has said this (on stderr: var/log/web.log).
print(f"Gymnos web process {os.getpid()} ready", file=sys.stderr, flush=True)
