import os

from django.core.asgi import get_asgi_application

from gymnos_web import localstate

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymnos_web.settings")
localstate.prepare()  # var/ and its secret key, before the settings read them: every worker then shares one key
application = get_asgi_application()
