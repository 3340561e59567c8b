"""The API object, its authentication, and the schemas every router shares."""

from __future__ import annotations

import logging
from typing import Any

import redis
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.datastructures import MultiValueDict
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError, ValidationError
from ninja.parser import Parser
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


def parsed_body(body: bytes, max_bytes: int = jsonlimits.MAX_BYTES) -> Any:
    """A request's JSON body within ``jsonlimits``' bounds (``JSONLimitError`` says which one it passed), refusing
    a NUL character in any string, key or value, with the 422 ninja answers a body of the wrong value with, its
    ``loc`` the path to that string: PostgreSQL stores no text holding one, and a launch, fork, sweep or alert
    rule with one answered 500 there. One check for every operation, before any of them reads the body."""
    try:
        return jsonlimits.loads(body, max_bytes=max_bytes, what="the body", refuse_nul=True)
    except jsonlimits.NulInJSON as exc:
        msg = f"{exc.detail}; {jsonlimits.NUL_FIX}"
        raise ValidationError([{"type": "value_error", "loc": ["body", *exc.path], "msg": msg}]) from None


class GymnosParser(Parser):
    """Ninja's parsing of a body and of a query, with what every operation refuses before it runs:
    a body past ``jsonlimits``' bounds or holding a NUL (``parsed_body``), and a parameter given more than once
    that is not a list (ninja took one of the values, silently): 422, naming it."""

    def parse_body(self, request: HttpRequest) -> Any:
        # Django bounded the body's size already (DATA_UPLOAD_MAX_MEMORY_SIZE); a push's file list may pass 1 MiB.
        return parsed_body(request.body, max_bytes=max(len(request.body), 1))

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        where = "query" if data is request.GET else "form" if data is request.POST else "file"
        repeated = [
            {"type": "value_error", "loc": [where, name], "msg": f"is given {len(values)} times; it is taken once"}
            for name, values in data.lists()
            if len(values) > 1 and name not in list_fields
        ]
        if repeated:
            raise ValidationError(repeated)
        return super().parse_querydict(data, list_fields, request)


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

    def on_exception(self, request: HttpRequest, exc: Exception | type[Exception]) -> HttpResponse:
        # Ninja answers whatever its parser raised for a body with 400 "Cannot parse request body", keeping it as
        # the cause: the parser's 422 (a NUL, with where) and a bound's own words are kept instead.
        cause = exc.__cause__ if isinstance(exc, HttpError) else None
        if isinstance(cause, ValidationError):
            exc = cause
        elif isinstance(cause, jsonlimits.JSONLimitError):
            exc = HttpError(400, str(cause))
        return super().on_exception(request, exc)

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


WRONG_INPUT = (
    "A parameter or the body has the wrong type or value: also a string of the body holding a NUL character "
    "(\\u0000), or a parameter that is not a list given more than once; `loc` says where"
)


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
        common.append(("422", WRONG_INPUT, "NinjaValidationErrors"))
    for status, description, component in common:
        if status not in present:
            responses[int(status)] = _answer(description, component)


api = GymnosAPI(
    title="Gymnos API",
    version="1",
    description="Launch Keras training runs from a Gymnos config, follow them epoch by epoch, and cancel them.",
    auth=[BearerToken(), django_auth],
    urls_namespace="api",
    parser=GymnosParser(),
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


def json_body(request: HttpRequest, max_bytes: int = jsonlimits.MAX_BYTES) -> Any:
    """The JSON body of an operation that reads it itself, checked as every body is (``parsed_body``): raises
    ``ConfigError`` past a bound (a 400 listing it, ``invalid``), ninja's ``ValidationError`` for a NUL (422)."""
    try:
        return parsed_body(request.body or b"null", max_bytes)
    except jsonlimits.JSONLimitError as exc:
        raise ConfigError([PipelineProblem("", str(exc))]) from exc


def invalid(exc: ConfigError) -> Status[Any]:
    """400 listing every problem with its path."""
    return Status(400, {"errors": [problem.as_dict() for problem in exc.problems]})
