"""Alert rules, what they delivered, and when each run last ended an epoch (for stalled runs)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import RowNumber

from experiments.models import Execution, Experiment
from sweeps.models import Sweep


class Rule(models.Model):
    """When a run should tell someone, and how: ``on failed, runs of experiment mnist, by webhook``."""

    class Scope(models.TextChoices):
        RUN = "run", "this run"
        EXPERIMENT = "experiment", "the runs of an experiment"
        SWEEP = "sweep", "the trials of a sweep"
        MINE = "mine", "every run I launch"
        EVERYONE = "everyone", "every run of everyone (staff)"

    class Kind(models.TextChoices):
        FINISHED = "finished", "finished (succeeded or pruned)"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"
        THRESHOLD = "threshold", "a metric crosses a threshold"
        NAN = "nan", "a metric is NaN or infinite"
        STALLED = "stalled", "no epoch for some minutes while running"
        WORKER_LOST = "worker_lost", "its worker or machine gone (resumed or failed)"
        SWEEP_FINISHED = "sweep_finished", "a sweep finished"
        NEW_BEST = "new_best", "a new best trial of a sweep"

    class Channel(models.TextChoices):
        EMAIL = "email", "e-mail"
        WEBHOOK = "webhook", "webhook"
        IN_APP = "in_app", "in the app (the bell)"

    class Format(models.TextChoices):
        JSON = "json", "JSON"
        SLACK = "slack", "Slack incoming webhook"
        TEAMS = "teams", "Microsoft Teams incoming webhook"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text="Who made the rule: it is theirs to see and delete, and mail and the bell go to them.",
    )
    scope = models.CharField(max_length=16, choices=Scope.choices, help_text="Which runs the rule watches.")
    execution = models.ForeignKey(
        Execution,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text="The run watched (scope run).",
    )
    experiment = models.ForeignKey(
        Experiment,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text="The experiment whose runs are watched (scope experiment).",
    )
    sweep = models.ForeignKey(
        Sweep,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text="The sweep whose trials are watched (scope sweep).",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, help_text="What makes the rule fire.")
    condition = models.CharField(
        max_length=240, blank=True, help_text="For a threshold: the condition as written, e.g. val_accuracy > 0.95."
    )
    metric = models.CharField(max_length=200, blank=True, help_text="For a threshold: the metric's name.")
    operator = models.CharField(max_length=2, blank=True, help_text="For a threshold: >, >=, < or <=.")
    threshold = models.FloatField(null=True, blank=True, help_text="For a threshold: the value compared with.")
    stall_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="For stalled: minutes without an epoch while running."
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, help_text="How the alert is delivered.")
    webhook_url = models.URLField(max_length=2000, blank=True, help_text="For a webhook: where the JSON is posted.")
    webhook_format = models.CharField(
        max_length=8, choices=Format.choices, default=Format.JSON, help_text="For a webhook: the body's shape."
    )
    failing = models.BooleanField(
        default=False, help_text="Its channel failed every attempt of a delivery; cleared by the next success."
    )
    last_error = models.TextField(blank=True, help_text="What the channel said when it last failed.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the rule was made.")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # fire(): the rules of a kind that may match an event (then narrowed by scope).
            models.Index(fields=["kind", "scope"], name="alerts_rule_kind_scope"),
        ]

    def __str__(self) -> str:
        return f"alert rule {self.pk}: {self.describe()}"

    def describe(self) -> str:
        """``when a run of experiment mnist failed, by webhook``, for pages, audit entries and messages."""
        what = self.condition if self.kind == self.Kind.THRESHOLD else self.get_kind_display()
        if self.kind == self.Kind.STALLED:
            what = f"no epoch for {self.stall_minutes} min while running"
        return f"{what}; {self.watched()}; by {self.get_channel_display()}"

    def watched(self) -> str:
        if self.scope == self.Scope.RUN and self.execution is not None:
            return (
                f"run {self.execution.pk} ({self.execution.experiment.name}/{self.execution.folder_name or 'queued'})"
            )
        if self.scope == self.Scope.EXPERIMENT and self.experiment is not None:
            return f"the runs of experiment {self.experiment.name}"
        if self.scope == self.Scope.SWEEP and self.sweep is not None:
            return f"the trials of sweep {self.sweep.pk}"
        return str(self.get_scope_display())


class Delivery(models.Model):
    """One alert: a rule that fired for a run's event, and what became of it (sent, failed, suppressed)."""

    class State(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        SUPPRESSED = "suppressed"

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="deliveries", help_text="The rule.")
    execution = models.ForeignKey(
        Execution, on_delete=models.CASCADE, related_name="alert_deliveries", help_text="The run it is about."
    )
    event = models.CharField(max_length=64, help_text="What happened: failed, threshold, nan, stalled@12, ...")
    key = models.CharField(
        max_length=128,
        unique=True,
        help_text="rule:run:event, unique: the same event delivered twice is one row, sent once.",
    )
    message = models.TextField(help_text="What the alert says.")
    details = models.JSONField(default=dict, blank=True, help_text="The event's figures, sent with a webhook.")
    status = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, help_text="Where it is.")
    reason = models.TextField(blank=True, help_text="Why it failed or was suppressed.")
    attempts = models.PositiveIntegerField(default=0, help_text="How many times the channel was tried.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the rule fired.")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the channel took it.")
    read_at = models.DateTimeField(null=True, blank=True, help_text="In the app: when its owner read it.")

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "deliveries"
        indexes = [
            # The rules page's last deliveries of a rule, and the rate limit's count of a rule's last hour.
            models.Index(fields=["rule", "-created_at"], name="alerts_delivery_rule_at"),
            # The bell: a user's unread in-app alerts (through their rules).
            models.Index(fields=["status", "read_at"], name="alerts_delivery_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class Progress(models.Model):
    """When a run last ended an epoch (written as each epoch is recorded): how a stalled run is told."""

    execution = models.OneToOneField(
        Execution, on_delete=models.CASCADE, primary_key=True, related_name="alert_progress", help_text="The run."
    )
    epoch = models.PositiveIntegerField(help_text="The last epoch ended, from 1.")
    at = models.DateTimeField(help_text="When it ended.")

    class Meta:
        verbose_name_plural = "progress"


def last_deliveries(rules: list[Rule], each: int) -> dict[int, list[Delivery]]:
    """The last ``each`` deliveries of every rule in ``rules``, newest first, in one query (however many each has)."""
    ranked = (
        Delivery.objects.filter(rule__in=rules)
        .select_related("execution__experiment")
        .annotate(
            rank=models.Window(
                RowNumber(), partition_by=models.F("rule_id"), order_by=[models.F("created_at").desc(), "-pk"]
            )
        )
        .filter(rank__lte=each)
        .order_by("rule_id", "rank")
    )
    found: dict[int, list[Delivery]] = {rule.pk: [] for rule in rules}
    for delivery in ranked:
        found[delivery.rule_id].append(delivery)
    return found


def unread_for(user: Any) -> models.QuerySet[Delivery]:
    """A user's in-app alerts not read yet (the bell)."""
    return Delivery.objects.filter(
        rule__owner=user, rule__channel=Rule.Channel.IN_APP, status=Delivery.State.SENT, read_at__isnull=True
    )
