"""Learning-rate schedules a config names, for the ``learning_rate_scheduler`` callback.

A config cannot hold code, so a schedule is a name plus its parameters, next to the type::

    {"type": "learning_rate_scheduler", "schedule": "exponential_decay", "decay_rate": 0.9}

``epoch`` is Keras's 0-based epoch index, so the first epoch always trains at the initial
rate. The initial rate is ``initial_learning_rate`` when given, else the optimizer's rate when
training starts. Pure Python: checking a config does not import Keras for this.
"""

from __future__ import annotations

import math

from .errors import SpecError, did_you_mean, unknown_type_message
from .values import boolean, decay_factor, fraction, positive_int, positive_number

REQUIRED = object()


class Schedule:
    """One named schedule: its parameters ``{name: (checker, default or REQUIRED)}`` and its formula."""

    name = ""
    parameters: dict = {}

    def __init__(self, initial_learning_rate=None, **params):
        self.initial = initial_learning_rate
        self.params = {name: default for name, (_, default) in self.parameters.items()} | params
        self.epochs = None

    def __call__(self, epoch, lr):
        if self.initial is None:  # the first call comes before any change: the optimizer's own rate
            self.initial = float(lr)
        return float(self.rate(epoch, self.initial))

    def rate(self, epoch, initial):
        raise NotImplementedError

    def describe(self):
        shown = ", ".join(f"{key}={value}" for key, value in self.params.items() if value is not None)
        return f"{self.name}({shown})"


class StepDecay(Schedule):
    """Multiply the rate by ``drop`` every ``epochs_drop`` epochs: 0.1, 0.1, 0.05, 0.05, ..."""

    name = "step_decay"
    parameters = {"drop": (decay_factor, 0.5), "epochs_drop": (positive_int, 10)}

    def rate(self, epoch, initial):
        return initial * self.params["drop"] ** math.floor(epoch / self.params["epochs_drop"])


class ExponentialDecay(Schedule):
    """``initial * decay_rate ** (epoch / decay_epochs)``; with ``staircase`` the exponent is floored."""

    name = "exponential_decay"
    parameters = {
        "decay_rate": (decay_factor, REQUIRED),
        "decay_epochs": (positive_int, 1),
        "staircase": (boolean, False),
    }

    def rate(self, epoch, initial):
        exponent = epoch / self.params["decay_epochs"]
        if self.params["staircase"]:
            exponent = math.floor(exponent)
        return initial * self.params["decay_rate"] ** exponent


class CosineDecay(Schedule):
    """Half a cosine from ``initial`` down to ``alpha * initial`` over ``decay_epochs`` (default: the run's epochs)."""

    name = "cosine_decay"
    parameters = {"decay_epochs": (positive_int, None), "alpha": (fraction, 0.0)}

    def rate(self, epoch, initial):
        span = self.params["decay_epochs"] or self.epochs or 1
        progress = min(epoch, span) / span
        alpha = self.params["alpha"]
        return initial * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * progress)) + alpha)


SCHEDULES = {cls.name: cls for cls in (StepDecay, ExponentialDecay, CosineDecay)}
COMMON = {"initial_learning_rate": (positive_number, None)}


def check_schedule(name, params, other_keys=()):
    """Raise SpecError (subpath: the offending key) for an unknown schedule or a bad parameter.

    ``other_keys`` are the spec's keys that are not parameters (``schedule``, ``verbose``), named
    in the message for a key that is neither.
    """
    if name is None:
        raise SpecError(f"is required: name a schedule, one of {', '.join(SCHEDULES)}", "schedule")
    if not isinstance(name, str):
        raise SpecError(f"must be a schedule name, one of {', '.join(SCHEDULES)}; got {name!r}", "schedule")
    cls = SCHEDULES.get(name)
    if cls is None:
        raise SpecError(unknown_type_message("schedule", name, SCHEDULES), "schedule")
    accepted = {**COMMON, **cls.parameters}
    for key, value in params.items():
        if key not in accepted:
            known = [*other_keys, *accepted]
            raise SpecError(
                f"unknown parameter for the {name} schedule{did_you_mean(key, known)} (it accepts: {', '.join(known)})",
                key,
            )
        checker, default = accepted[key]
        if value is None and default is None:
            continue
        problem = checker(value)
        if problem:
            raise SpecError(problem, key)
    for key, (_, default) in cls.parameters.items():
        if default is REQUIRED and key not in params:
            raise SpecError(f"is required by the {name} schedule", key)


def make_schedule(name, params):
    """``make_schedule("step_decay", {"drop": 0.5})`` -> a callable ``(epoch, lr) -> lr`` for Keras."""
    check_schedule(name, params)
    return SCHEDULES[name](**params)
