"""The JSON API (django-ninja). Schema at /api/openapi.json, browsable at /api/docs.

Authentication: a logged-in session (with its CSRF token), or ``Authorization: Bearer <token>``
where ``python manage.py api_token USERNAME`` makes the token and prints it once. Launching and
cancelling need the ``experiments.add_execution`` permission. One router per object.

This package holds the API object, a run's one JSON shape (``schemas``) and the core's routers (``base``,
``executions``); the features
attach their own operations. They are put together in ``gymnos_web.api``, which nothing below the URL
module imports, so importing any feature's ``api`` module first works.
"""
