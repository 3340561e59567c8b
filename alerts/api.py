"""``/api/alerts``: a user's alert rules, listed, made and deleted (assembled in ``gymnos_web.api``).

A rule is its owner's: another user's rule is neither listed nor found (404), staff included.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from django.http import HttpRequest
from ninja import Router, Schema, Status

from experiments.access import get_execution_by_id_for_user, get_experiment_for_user
from experiments.api.base import Detail, ValidationErrors, api, invalid, json_body
from experiments.pipeline import ConfigError
from experiments.pipeline.errors import Problem
from sweeps.scope import get_sweep_for_user

from .forms import RuleForm
from .models import Delivery, Rule, last_deliveries
from .views import LAST_DELIVERIES, get_rule_for_user, made, remove, rules_of

router = Router(tags=["alerts"])
LISTED_AT_MOST = 500


class RuleIn(pydantic.BaseModel):
    """A rule to make. ``scope`` says which runs: ``run`` (give ``execution``), ``experiment`` (its name),
    ``sweep`` (its id), ``mine`` (every run you launch) or ``everyone`` (staff only)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    scope: Literal["run", "experiment", "sweep", "mine", "everyone"]
    kind: Literal[
        "finished", "failed", "cancelled", "threshold", "nan", "stalled", "worker_lost", "sweep_finished", "new_best"
    ]
    channel: Literal["email", "webhook", "in_app"]
    execution: int | None = None
    experiment: str | None = pydantic.Field(default=None, max_length=255)
    sweep: int | None = None
    condition: str = pydantic.Field(default="", max_length=240, description="For a threshold: val_accuracy > 0.95")
    stall_minutes: int | None = None
    webhook_url: str = pydantic.Field(default="", max_length=2000)
    webhook_format: Literal["json", "slack", "teams"] = "json"


class DeliveryOut(Schema):
    run: int
    event: str
    status: str
    reason: str
    attempts: int
    created_at: str


class RuleOut(Schema):
    id: int
    scope: str
    kind: str
    channel: str
    description: str
    execution: int | None
    experiment: str | None
    sweep: int | None
    condition: str
    stall_minutes: int | None
    webhook_url: str
    webhook_format: str
    failing: bool
    last_error: str
    created_at: str
    deliveries: list[DeliveryOut]


def rule_out(rule: Rule, last: list[Delivery]) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "scope": rule.scope,
        "kind": rule.kind,
        "channel": rule.channel,
        "description": rule.describe(),
        "execution": rule.execution_id,
        "experiment": rule.experiment.name if rule.experiment else None,
        "sweep": rule.sweep_id,
        "condition": rule.condition,
        "stall_minutes": rule.stall_minutes,
        "webhook_url": rule.webhook_url,
        "webhook_format": rule.webhook_format,
        "failing": rule.failing,
        "last_error": rule.last_error,
        "created_at": rule.created_at.isoformat(),
        "deliveries": [
            {
                "run": delivery.execution_id,
                "event": delivery.event,
                "status": delivery.status,
                "reason": delivery.reason,
                "attempts": delivery.attempts,
                "created_at": delivery.created_at.isoformat(),
            }
            for delivery in last
        ],
    }


def _problems(error: pydantic.ValidationError) -> ConfigError:
    return ConfigError(
        [Problem(".".join(str(part) for part in item["loc"]) or "body", item["msg"]) for item in error.errors()]
    )


@router.get("", response=list[RuleOut], summary="Your alert rules, newest first, with their last deliveries")
def list_rules(request: HttpRequest) -> list[dict[str, Any]]:
    rules = list(rules_of(request.user)[:LISTED_AT_MOST])
    last = last_deliveries(rules, LAST_DELIVERIES)
    return [rule_out(rule, last[rule.pk]) for rule in rules]


@router.post(
    "",
    response={201: RuleOut, 400: ValidationErrors, 403: Detail, 404: Detail},
    summary="Make an alert rule",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": api.body_schema(RuleIn.model_json_schema())}},
        }
    },
)
def create(request: HttpRequest) -> Status[Any]:
    """400 lists every problem with its field: a webhook's host not in GYMNOS_WEBHOOK_HOSTS, a bad condition, ..."""
    try:
        body = json_body(request)
        try:
            given = RuleIn.model_validate(body)
        except pydantic.ValidationError as exc:
            raise _problems(exc) from None
    except ConfigError as exc:
        return invalid(exc)
    if given.scope == "everyone" and not request.user.is_staff:
        return Status(403, {"detail": "only staff may make a rule over everyone's runs"})
    watched: dict[str, Any] = {}
    missing = {"run": "execution", "experiment": "experiment", "sweep": "sweep"}.get(given.scope)
    if missing and getattr(given, missing) is None:
        return invalid(ConfigError([Problem(missing, f"a rule with scope {given.scope} says which: give {missing}")]))
    if given.scope == "run":
        watched["execution"] = get_execution_by_id_for_user(request.user, given.execution or 0)
    elif given.scope == "experiment":
        watched["experiment"] = get_experiment_for_user(request.user, given.experiment or "")
    elif given.scope == "sweep":
        watched["sweep"] = get_sweep_for_user(request.user, given.sweep or 0)
    form = RuleForm(given.model_dump(exclude={"scope", "execution", "experiment", "sweep"}), user=request.user)
    if not form.is_valid():
        return invalid(
            ConfigError([Problem(field, str(error)) for field, errors in form.errors.items() for error in errors])
        )
    rule = form.build(given.scope, **watched)
    made(request, rule, via="api")
    return Status(201, rule_out(rule, []))


@router.delete("/{rule_id}", response={204: None, 404: Detail}, summary="Delete one of your alert rules")
def delete(request: HttpRequest, rule_id: int) -> Status[Any]:
    rule = get_rule_for_user(request.user, rule_id)
    remove(request, rule, via="api")
    return Status(204, None)
