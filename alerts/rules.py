"""What a rule says and what it matches: the threshold's tiny parser, the events, the match of one rule to one event.

Nothing here touches the database: ``alerts.firing`` reads the rules and the run, and asks ``match``.

>>> parse_condition("val_accuracy > 0.95")
('val_accuracy', '>', 0.95)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from experiments.models import Status
from experiments.pipeline.names import metric_name_problem

if TYPE_CHECKING:
    from alerts.models import Rule

MAX_CONDITION = 240
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
# How a run's end is said by the rule kinds (a pruned trial ended early, on purpose: it finished).
ENDINGS: dict[str, str] = {
    Status.SUCCEEDED: "finished",
    Status.PRUNED: "finished",
    Status.FAILED: "failed",
    Status.CANCELLED: "cancelled",
}


def parse_condition(text: str) -> tuple[str, str, float]:
    """``"val_accuracy > 0.95"`` -> ``("val_accuracy", ">", 0.95)``; ``ValueError`` saying what is wrong and how.

    One pass over at most ``MAX_CONDITION`` characters: the first ``<`` or ``>`` splits the metric from the number.
    """
    if len(text) > MAX_CONDITION:
        raise ValueError(f"the condition is {len(text):,} characters; at most {MAX_CONDITION}")
    example = "write it as <metric> <operator> <number>, e.g. val_accuracy > 0.95 (operators: >, >=, <, <=)"
    at = next((index for index, character in enumerate(text) if character in "<>"), None)
    if at is None:
        raise ValueError(f"the condition {text.strip()[:60]!r} has no comparison; {example}")
    op = text[at : at + 2] if text[at + 1 : at + 2] == "=" else text[at]
    metric, number = text[:at].strip(), text[at + len(op) :].strip()
    problem = metric_name_problem(metric)
    if problem is not None:
        raise ValueError(f"{problem}; {example}")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{number[:60]!r} after {op} is not a number; {example}") from None
    if not math.isfinite(value):
        raise ValueError(f"the threshold must be a finite number, got {number[:60]!r}; {example}")
    return metric, op, value


@dataclass(frozen=True)
class Event:
    """What a run did: ``ended`` (with its ``status``), an ``epoch`` ended (with its ``metrics`` as logged),
    ``stalled`` (no epoch for ``idle_minutes``; ``epoch`` is the last one ended), ``lost`` (its worker, work horse or
    machine died: ``facts`` has reason, attempt, resumed), ``best`` (it is its sweep's new best trial: ``facts`` has
    sweep, number, metric, value) or ``sweep_finished`` (its sweep, whose best or last trial it is, finished:
    ``facts`` has sweep, trials, metric, best)."""

    execution: int
    what: str
    status: str = ""
    epoch: int = 0
    metrics: dict[str, float | None] = field(default_factory=dict)
    idle_minutes: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """A rule fired: its event's name in the idempotency key, what it says, and its figures."""

    event: str
    message: str
    details: dict[str, object]


def kinds_for(event: Event) -> list[str]:
    """The rule kinds that may fire on ``event``."""
    if event.what == "ended":
        return [ENDINGS[event.status]] if event.status in ENDINGS else []
    if event.what == "epoch":
        return ["threshold", "nan"]
    return {
        "stalled": ["stalled"],
        "lost": ["worker_lost"],
        "best": ["new_best"],
        "sweep_finished": ["sweep_finished"],
    }.get(event.what, [])


def match(rule: Rule, event: Event) -> Match | None:
    """Whether ``rule`` fires on ``event`` (its scope already matched), and how it says so."""
    if event.what in ("lost", "best", "sweep_finished"):
        return _of_machines_and_sweeps(rule, event)
    if event.what == "ended" and ENDINGS.get(event.status) == rule.kind:
        return Match(rule.kind, f"{rule.kind}", {"status": event.status})
    if event.what == "epoch" and rule.kind == "threshold" and rule.operator in OPERATORS:
        value = event.metrics.get(rule.metric)
        if value is not None and math.isfinite(value) and rule.threshold is not None:
            if OPERATORS[rule.operator](value, rule.threshold):
                said = f"{rule.metric} = {value:.6g} at epoch {event.epoch} ({rule.operator} {rule.threshold:g})"
                return Match("threshold", said, {"metric": rule.metric, "value": value, "epoch": event.epoch})
    if event.what == "epoch" and rule.kind == "nan":
        bad = sorted(name for name, value in event.metrics.items() if value is not None and not math.isfinite(value))
        if bad:
            values = {name: str(event.metrics[name]) for name in bad[:20]}
            said = f"{', '.join(bad[:5])} {'is' if len(bad) == 1 else 'are'} not finite at epoch {event.epoch}"
            return Match("nan", said, {"metrics": values, "epoch": event.epoch})
    if event.what == "stalled" and rule.kind == "stalled" and rule.stall_minutes is not None:
        if event.idle_minutes >= rule.stall_minutes:
            said = f"no epoch for {event.idle_minutes:.0f} min (the last: {event.epoch})"
            # Once per stall: a run that moves on and stalls again is told again.
            return Match(f"stalled@{event.epoch}", said, {"idle_minutes": round(event.idle_minutes, 1)})
    return None


def _of_machines_and_sweeps(rule: Rule, event: Event) -> Match | None:
    """The kinds whose event is one fact, said as it is: a run's worker gone, a sweep's new best, a sweep's end."""
    facts = event.facts
    if event.what == "lost" and rule.kind == "worker_lost":
        then = "queued again to resume from its kept state" if facts.get("resumed") else "failed"
        said = f"its worker or machine went away ({facts.get('reason', '')}); {then}"
        # Once per attempt: a run resumed and lost again is told again.
        return Match(f"worker_lost@{facts.get('attempt', 1)}", said, dict(facts))
    if event.what == "best" and rule.kind == "new_best":
        said = f"new best trial #{facts.get('number')} of sweep {facts.get('sweep')}: {facts.get('metric')} = "
        return Match("new_best", said + f"{float(facts.get('value', math.nan)):.6g}", dict(facts))
    if event.what == "sweep_finished" and rule.kind == "sweep_finished":
        best = facts.get("best")
        said = f"sweep {facts.get('sweep')} finished ({facts.get('trials')} trials); " + (
            f"best {facts.get('metric')} = {best:.6g} (this run)" if best is not None else "no trial scored"
        )
        return Match("sweep_finished", said, dict(facts))
    return None
