"""The JSON API (django-ninja). Schema at /api/openapi.json, browsable at /api/docs.

Authentication: a logged-in session (with its CSRF token), or ``Authorization: Bearer <token>``
where ``python manage.py api_token USERNAME`` makes the token and prints it once. Launching and
cancelling need the ``experiments.add_execution`` permission. One router per object.
"""

from experiments.api import executions
from experiments.api.base import api

api.add_router("/executions", executions.router)

__all__ = ["api"]
