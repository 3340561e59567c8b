"""The API object, its authentication, and the schemas every router shares."""

from __future__ import annotations

import logging
from typing import Any

import redis
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError
from ninja.security import HttpBearer, django_auth

from experiments.access import LAUNCH_PERMISSION, action_of, project_to_write, require_role
from experiments.models import ApiToken, Project
from experiments.pipeline import ConfigError, jsonlimits
from experiments.pipeline import Problem as PipelineProblem


class BearerToken(HttpBearer):
    """``Authorization: Bearer <key>``, a key ``manage.py api_token`` printed."""

    scopes: tuple[str, ...] = (ApiToken.Scope.ALL,)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = ApiToken.user_for(token, self.scopes)
        if user is not None:
            limits = getattr(user, "token_limits", None)
            if limits is not None and limits.read_only and request.method not in ("GET", "HEAD", "OPTIONS"):
                raise HttpError(403, "this API token is read-only: it may only read (GET)")
            request.user = user
        return user


class PushToken(BearerToken):
    """A token of any scope, a push-only one too: for the push operations alone (``/api/push/...``)."""

    scopes = (ApiToken.Scope.ALL, ApiToken.Scope.PUSH)


class GymnosAPI(NinjaAPI):
    """Ninja's API, whose OpenAPI document also holds the schemas an operation names by ``$ref``
    in its ``openapi_extra`` (the launch body's config schema, generated from the engine's models)."""

    extra_schemas: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extra_schemas = {}

    def body_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``schema`` for a request body: its ``$defs`` move to ``components.schemas`` (where its refs point)."""
        schema = dict(schema)
        self.extra_schemas.update(schema.pop("$defs", {}))
        return schema

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(self.extra_schemas)
        components.setdefault("Detail", {"type": "object", "properties": {"detail": {"type": "string"}}})
        components.setdefault("NinjaValidationErrors", {"type": "object", "properties": {"detail": {"type": "array"}}})
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                if isinstance(operation, dict) and "responses" in operation:
                    _document_common_answers(path, operation)
        return schema


def _answer(description: str, component: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
    }


def _document_common_answers(path: str, operation: dict[str, Any]) -> None:
    """The answers every operation can give besides its own: without a login (401), for an id that is
    not there (404), for a parameter or body of the wrong type (422, as ninja answers it)."""
    responses = operation["responses"]
    present = {str(status) for status in responses}
    common = []
    if operation.get("security"):
        common.append(("401", "Not logged in, or the token is unknown", "Detail"))
    if "{" in path:
        common.append(("404", "No such object", "Detail"))
    if operation.get("parameters") or operation.get("requestBody"):
        common.append(("422", "A parameter or the body has the wrong type", "NinjaValidationErrors"))
    for status, description, component in common:
        if status not in present:
            responses[int(status)] = _answer(description, component)


api = GymnosAPI(
    title="Gymnos API",
    version="1",
    description="Launch Keras training runs from a Gymnos config, follow them epoch by epoch, and cancel them.",
    auth=[BearerToken(), django_auth],
    urls_namespace="api",
)


log = logging.getLogger("experiments.api")


def _unexpected(request: HttpRequest, exc: Exception | type[Exception]) -> HttpResponse:
    """Anything no other handler answered: logged with its traceback, answered as JSON (never an HTML page)."""
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return api.create_response(request, {"detail": f"the job queue is unavailable: {exc}"}, status=503)
    if isinstance(exc, SuspiciousOperation):  # a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a bad host...
        return api.create_response(request, {"detail": f"refused: {exc}"}, status=400)
    log.error(
        "Internal error in %s %s", request.method, request.path, exc_info=exc if isinstance(exc, Exception) else None
    )
    return api.create_response(request, {"detail": "internal error; the server logged its traceback"}, status=500)


api.add_exception_handler(Exception, _unexpected)


class Detail(Schema):
    detail: str


class Problem(Schema):
    path: str
    message: str


class ValidationErrors(Schema):
    errors: list[Problem]


def forbidden_unless_allowed(
    request: HttpRequest, permission: str = LAUNCH_PERMISSION, obj: Any = None
) -> Status[Any] | None:
    """403 with what is missing, unless the user may do what ``permission`` stands for in ``obj``'s project
    (``default`` when there is no object yet); 404 (raised) if they may not see that project."""
    try:
        require_role(request.user, obj if obj is not None else Project.default(), action_of(permission))
    except PermissionDenied as exc:
        return Status(403, {"detail": str(exc)})
    return None


def target_project(request: HttpRequest, name: str | None) -> Project | Status[Any]:
    """The project ``?project=NAME`` names where the caller launches or pushes (``access.project_to_write``), or
    the answer refusing it: 404 for one they may not see, 403 naming the role they lack there."""
    try:
        return project_to_write(request.user, name)
    except Http404 as exc:
        return Status(404, {"detail": str(exc)})
    except PermissionDenied as exc:
        return Status(403, {"detail": str(exc)})


def json_body(request: HttpRequest, max_bytes: int | None = None) -> Any:
    """The request's JSON body, within ``jsonlimits``' size and depth bounds; raises ``ConfigError``."""
    limits = {} if max_bytes is None else {"max_bytes": max_bytes}
    try:
        return jsonlimits.loads(request.body or b"null", what="the body", **limits)
    except jsonlimits.JSONLimitError as exc:
        raise ConfigError([PipelineProblem("", str(exc))]) from exc


def invalid(exc: ConfigError) -> Status[Any]:
    """400 listing every problem with its path."""
    return Status(400, {"errors": [problem.as_dict() for problem in exc.problems]})
