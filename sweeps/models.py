"""Sweeps and their trials.

A ``Sweep`` is one search: its document, the Optuna study it keeps in Gymnos' own database
(``study_name``), and where it stands. Each ``Trial`` is one set of sampled values; once its
config validates it is an ordinary ``Execution`` (``Trial.execution``), queued and trained like
any other run. A sweep's status moves only through ``SweepQuerySet``'s transitions, each a
conditional update from ``running``, so a sweep that ended never starts again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from experiments import live
from experiments.models import LIVE, Execution, Status, higher_is_better
from experiments.models.fields import json_object, person
from experiments.models.tokens import SecretURL


class SweepQuerySet(models.QuerySet["Sweep"]):
    def running(self) -> SweepQuerySet:
        return self.filter(status=Sweep.State.RUNNING)

    def _end(self, pk: int, state: str, error: str = "") -> bool:
        ended = (
            self.filter(pk=pk, status=Sweep.State.RUNNING).update(status=state, error=error, finished_at=timezone.now())
            == 1
        )
        if ended:  # the sweep page's stream ends with it
            transaction.on_commit(lambda: live.publish_sweep(pk, live.SWEEP, status=state))
        return ended

    def finish(self, pk: int) -> bool:
        """running -> finished: every trial asked for has ended."""
        return self._end(pk, Sweep.State.FINISHED)

    def cancel(self, pk: int) -> bool:
        """running -> cancelled: no trial is asked for any more (the caller stops the live ones)."""
        return self._end(pk, Sweep.State.CANCELLED, "cancelled by a user")

    def fail(self, pk: int, error: str) -> bool:
        """running -> failed: something every trial would hit (a parameter Keras rejects, an objective never logged)."""
        return self._end(pk, Sweep.State.FAILED, error)


class Sweep(models.Model):
    """One hyperparameter search over a base config; its trials are executions."""

    class State(models.TextChoices):
        RUNNING = "running"
        FINISHED = "finished"
        CANCELLED = "cancelled"
        FAILED = "failed"

    name = models.CharField(max_length=200, help_text="What the sweep searches, e.g. boston lr and width.")
    status = models.CharField(
        max_length=16, choices=State.choices, default=State.RUNNING, help_text="Where the sweep stands."
    )
    document = models.JSONField(help_text="The sweep document as validated (its base as given: a config or a run id).")
    base_config = models.JSONField(help_text="The config every trial starts from, before its sampled values.")
    base_execution = models.ForeignKey(
        Execution,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sweeps_from",
        help_text="The run whose config is the base, when the sweep started from a run.",
    )
    project = models.ForeignKey(
        "experiments.Project",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sweeps",
        help_text="The project the sweep was launched into, where its trials train; blank for a sweep launched "
        "before sweeps named one (its base run's project, its trials in default).",
    )
    method = models.CharField(max_length=8, help_text="How values are chosen: grid, random or tpe.")
    trials_total = models.PositiveIntegerField(help_text="How many trials the sweep runs (N).")
    parallel = models.PositiveIntegerField(help_text="At most this many trials queued or running at once.")
    metric = models.CharField(max_length=200, help_text="The objective's metric, e.g. val_loss.")
    which = models.CharField(max_length=8, help_text="Which value of the metric scores a trial: best or last.")
    direction = models.CharField(max_length=8, help_text="minimize or maximize.")
    study_name = models.CharField(
        max_length=100, unique=True, help_text="The Optuna study's name in this database (gymnos-sweep-<id>-<random>)."
    )
    seed = models.PositiveIntegerField(help_text="Seeds the sampler, so the same sweep asks for the same values.")
    queue = models.CharField(max_length=32, help_text="The RQ queue the sweep's own jobs go to (its trials' queue).")
    trusted = models.BooleanField(
        default=False, help_text="Launched from the command line: its configs may name any dataset.path."
    )
    importance = json_object("Each parameter's importance (Optuna's evaluator), highest first.")
    importance_at = models.DateTimeField(
        null=True, blank=True, help_text="When the importances were last computed (at most every 10 s while it runs)."
    )
    error = models.TextField(blank=True, help_text="Why the sweep stopped early, if it did.")
    created_by = person("sweeps", "Who launched it (empty: the command line).")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was launched.")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When it finished, was cancelled or failed.")

    objects = SweepQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The sweeps list, newest first.
            models.Index(fields=["-created_at"], name="sweep_by_date"),
            # The safety check: the sweeps still running.
            models.Index(fields=["status"], name="sweep_by_status"),
        ]

    def __str__(self) -> str:
        return f"sweep {self.pk} ({self.name})"

    @property
    def is_running(self) -> bool:
        return self.status == self.State.RUNNING


# A trial reserved but never queued (the job asking for it died, or Redis went away as it was queued) gives its
# slot back after this long: the reaper (``sweeps.launching.release_abandoned``) or its sweep's next advance fails it.
ABANDONED_AFTER = dt.timedelta(minutes=5)
ABANDONED = "the job asking for this trial stopped before it was queued (its worker was lost, or Redis went away)"


class TrialQuerySet(models.QuerySet["Trial"]):
    def release_abandoned(self, now: dt.datetime | None = None) -> int:
        """Fail the trials reserved ``ABANDONED_AFTER`` ago and still not queued, with the reason; returns how many.

        A conditional update: the job that reserved one and queues it late finds it failed and queues nothing.
        """
        stale = (now or timezone.now()) - ABANDONED_AFTER
        return self.filter(execution__isnull=True, error="", told_at__isnull=True, created_at__lt=stale).update(
            error=ABANDONED
        )

    def live(self) -> TrialQuerySet:
        """Trials that take a slot of ``parallel``: queued or running, or being asked for and queued."""
        return self.filter(Q(execution__status__in=LIVE) | Q(execution__isnull=True, error="", told_at__isnull=True))

    def untold(self) -> TrialQuerySet:
        """Trials that ended (or never became a run) and whose outcome the study has not been told yet."""
        ended = Q(execution__isnull=False) & ~Q(execution__status__in=LIVE)
        return self.filter(told_at__isnull=True).filter(ended | Q(execution__isnull=True) & ~Q(error=""))


class Trial(models.Model):
    """One set of sampled values of a sweep, and the execution that trained it."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="trials", help_text="Its sweep.")
    number = models.PositiveIntegerField(
        help_text="Its place in the sweep, from 0, in the order trials were asked for."
    )
    optuna_number = models.IntegerField(null=True, blank=True, help_text="The trial's number in the Optuna study.")
    execution = models.OneToOneField(
        Execution,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sweep_trial",
        help_text="The run that trains it (empty while it is being asked for, or if its config did not validate).",
    )
    params = json_object('The sampled values by config path: {"training.batch_size": 64}.')
    value = models.FloatField(null=True, blank=True, help_text="Its objective, once it ended (pruned: so far).")
    outcome = models.CharField(
        max_length=16,
        blank=True,
        help_text="How it ended, as the study was told: succeeded, pruned, failed, cancelled.",
    )
    error = models.TextField(
        blank=True, help_text="Why it failed without training (its sampled config did not validate)."
    )
    told_at = models.DateTimeField(null=True, blank=True, help_text="When the study was told how it ended.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was asked for.")

    objects = TrialQuerySet.as_manager()

    class Meta:
        ordering = ["sweep", "number"]
        constraints = [
            # A sweep's trials in order; also caps the trials at one row per place, whoever asks.
            models.UniqueConstraint(fields=["sweep", "number"], name="trial_unique_number"),
        ]

    def __str__(self) -> str:
        return f"trial {self.number} of sweep {self.sweep_id}"

    @property
    def status(self) -> str:
        """What the trial's run is (queued, running, succeeded, pruned, failed, ...); ``starting`` before it is one."""
        if self.execution is not None:
            return self.execution.status
        if self.error or self.outcome:
            return self.outcome or Status.FAILED
        return "starting"

    def objective(self) -> float | None:
        """Its objective: what the study was told, or, for a run that just ended and is not told yet,
        what its summary says (when the summary's idea of "best" is the sweep's)."""
        execution = self.execution
        if self.value is not None or execution is None or execution.status not in (Status.SUCCEEDED, Status.PRUNED):
            return self.value
        sweep = self.sweep
        if sweep.which == "best" and higher_is_better(sweep.metric) != (sweep.direction == "maximize"):
            return None
        value = (execution.summary.get(sweep.metric) or {}).get(sweep.which)
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def reason(self) -> str:
        """Why it failed, in one line: its own error (its config did not validate), else the first line of its
        run's ("ValueError: ..."); empty for a trial that did not fail."""
        execution = self.execution
        failed = execution is not None and execution.status in (Status.FAILED, Status.CANCELLED, Status.MISSING)
        text = self.error or (execution.error if failed and execution is not None else "")
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        return first if len(first) <= 200 else first[:199] + "…"

    def as_dict(self) -> dict[str, Any]:
        execution = self.execution
        return {
            "number": self.number,
            "status": self.status,
            "params": self.params,
            "value": self.objective(),
            "epochs": execution.epochs if execution is not None else 0,
            "execution": execution.pk if execution is not None else None,
            "error": self.error,
            "reason": self.reason,
        }


class SweepShare(SecretURL):
    """A read-only link to one sweep's page, for someone without an account (as a comparison's link)."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="share_links", help_text="The sweep shown.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="When the link stops working (empty: never).")
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="When it was revoked (empty: still active).")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"share link to sweep {self.sweep_id}"

    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
