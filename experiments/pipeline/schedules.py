"""Learning-rate schedules a config names, for the ``learning_rate_scheduler`` callback.

A config cannot hold code, so a schedule is a name plus its parameters, next to the type::

    {"type": "learning_rate_scheduler", "schedule": "exponential_decay", "decay_rate": 0.9}

Each schedule is a pydantic model (``callbacks.py`` joins each one with the callback's own keys)
whose ``rate(epoch, initial, epochs)`` is its formula. ``epoch`` is Keras's 0-based index, so the
first epoch trains at the initial rate: ``initial_learning_rate`` when given, else the optimizer's
rate when training starts. Pure Python: nothing here imports Keras.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .schema import Component, Explained

DecayFactor = Annotated[
    float, Field(gt=0, le=1), Explained("a number above 0 and at most 1 (the fraction of the rate kept)")
]
PositiveInt = Annotated[int, Field(gt=0)]


class Schedule(Component):
    """One named schedule: its parameters are its fields, its formula ``rate``."""

    selectors: ClassVar[tuple[str, ...]] = ("type", "schedule")
    initial_learning_rate: Annotated[float, Field(gt=0)] | None = None

    def rate(self, epoch: int, initial: float, epochs: int | None) -> float:
        raise NotImplementedError

    def describe(self) -> str:
        """``exponential_decay(decay_rate=0.9, decay_epochs=1, staircase=False)``"""
        params = self.model_dump(exclude={"type", "schedule", "verbose"}, exclude_none=True)
        return f"{getattr(self, 'schedule', '')}({', '.join(f'{key}={value}' for key, value in params.items())})"


class StepDecay(Schedule):
    """Multiply the rate by ``drop`` every ``epochs_drop`` epochs: 0.1, 0.1, 0.05, 0.05, ..."""

    schedule: Literal["step_decay"]
    drop: DecayFactor = 0.5
    epochs_drop: PositiveInt = 10

    def rate(self, epoch: int, initial: float, epochs: int | None) -> float:
        return initial * self.drop ** math.floor(epoch / self.epochs_drop)


class ExponentialDecay(Schedule):
    """``initial * decay_rate ** (epoch / decay_epochs)``; with ``staircase`` the exponent is floored."""

    schedule: Literal["exponential_decay"]
    decay_rate: DecayFactor
    decay_epochs: PositiveInt = 1
    staircase: bool = False

    def rate(self, epoch: int, initial: float, epochs: int | None) -> float:
        exponent = epoch / self.decay_epochs
        if self.staircase:
            exponent = math.floor(exponent)
        return initial * self.decay_rate**exponent


class CosineDecay(Schedule):
    """Half a cosine from ``initial`` down to ``alpha * initial`` over ``decay_epochs`` (default: the run's epochs)."""

    schedule: Literal["cosine_decay"]
    decay_epochs: PositiveInt | None = None
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.0

    def rate(self, epoch: int, initial: float, epochs: int | None) -> float:
        span = self.decay_epochs or epochs or 1
        progress = min(epoch, span) / span
        return initial * ((1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * progress)) + self.alpha)
