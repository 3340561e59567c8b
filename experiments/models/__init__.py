"""The index (experiments, executions, metric histories), its lifecycle, and the credentials."""

from .executions import Execution, ExecutionQuerySet, Experiment, MetricHistory
from .lifecycle import ENDED, LIVE, Status
from .projects import DEFAULT_PROJECT, Project, ProjectRole, Role
from .search import KeyCount, RunCount, SearchValue
from .summary import finite_or_none, higher_is_better, summarise
from .tokens import ApiToken, PublishToken, ShareLink, _new_token

__all__ = [
    "Project",
    "ProjectRole",
    "Role",
    "DEFAULT_PROJECT",
    "Experiment",
    "Execution",
    "ExecutionQuerySet",
    "MetricHistory",
    "SearchValue",
    "RunCount",
    "KeyCount",
    "Status",
    "LIVE",
    "ENDED",
    "ApiToken",
    "ShareLink",
    "PublishToken",
    "finite_or_none",
    "higher_is_better",
    "summarise",
    "_new_token",  # migration 0003 names it as the tokens' default
]
