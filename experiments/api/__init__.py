"""The JSON API (django-ninja). Schema at /api/openapi.json, browsable at /api/docs.

Authentication: a logged-in session (with its CSRF token), or ``Authorization: Bearer <token>``
where ``python manage.py api_token USERNAME`` makes the token and prints it once. Launching and
cancelling need the ``experiments.add_execution`` permission. One router per object.
"""

from experiments.api import executions
from experiments.api.base import api

# The features' own operations, attached to the routers when their modules are imported.
from experiments.curation import api as curation_api
from experiments.evaluation import api as evaluation_api
from experiments.search import api as search_api
from experiments.system import api as system_api
from sweeps import api as sweeps_api

FEATURES = (search_api, system_api, curation_api, evaluation_api)

api.add_router("/executions", executions.router)
api.add_router("/sweeps", sweeps_api.router)
api.add_router("/experiments", search_api.experiments_router)

__all__ = ["api"]
