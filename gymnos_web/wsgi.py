"""The WSGI application (gunicorn, or any WSGI server). Each web process starts its build checker here."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymnos_web.settings")
application = get_wsgi_application()

# The fork server that checks launched configs imports TensorFlow (seconds): start it now, in the
# background, so the first launch after start-up does not wait for it.
from experiments.running import warm_up  # noqa: E402 - needs the application (settings, apps) loaded

warm_up()
