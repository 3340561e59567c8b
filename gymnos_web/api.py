"""The JSON API put together: the core's routers and every feature's operations, imported here only.

A feature's ``api`` module attaches its operations to a core router (``experiments.api.executions.router``)
or defines its own; importing it here, from the top of the import graph, is what puts it in the API.
"""

from alerts import api as alerts_api
from experiments.api import executions, projects, push
from experiments.api.base import api
from experiments.curation import api as curation_api
from experiments.evaluation import api as evaluation_api
from experiments.search import api as search_api
from experiments.system import api as system_api
from sweeps import api as sweeps_api

# The modules whose operations are attached to the core's routers as they are imported.
FEATURES = (curation_api, evaluation_api, search_api, system_api)

api.add_router("/executions", executions.router)
api.add_router("/push", push.router)
api.add_router("/sweeps", sweeps_api.router)
api.add_router("/alerts", alerts_api.router)
api.add_router("/experiments", search_api.experiments_router)
api.add_router("/projects", projects.router)

__all__ = ["FEATURES", "api"]
