"""The index of execution folders: experiments, their executions, and each metric's history.

The folders under the trainings root are the record of truth; these rows are an index of them
that the dashboard reads (``experiments.index.sync`` keeps it current). A metric's whole history is
one row holding one array, because the dashboard always reads whole series. How a run's status
moves is ``lifecycle.py``'s alone.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast

from .fields import json_object, person
from .lifecycle import ExecutionTransitions, MetricHistoryQuerySet, Status
from .projects import Project, default_project_id
from .summary import downsample, higher_is_better, is_epoch_metric, summarise


class Experiment(models.Model):
    """One ``<dataset>`` folder of a project, with all of its executions: ``<trainings root>/<dataset>`` in the
    ``default`` project, ``<trainings root>/projects/<project>/<dataset>`` in any other."""

    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        default=default_project_id,
        related_name="experiments",
        help_text="The project it belongs to (its folder's place says so); default unless another is named.",
    )
    name = models.CharField(max_length=255, help_text="The folder's name, e.g. boston_housing; unique in its project.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the index first saw this experiment.")
    archived = models.BooleanField(default=False, help_text="Hidden, with all its runs, from the default lists.")

    class Meta:
        ordering = ["name"]
        constraints = [
            # Two teams training on iris each have their own iris; sync upserts on it.
            models.UniqueConstraint(fields=["project", "name"], name="experiment_unique_name_in_project"),
        ]

    def __str__(self) -> str:
        return self.name


class ExecutionQuerySet(ExecutionTransitions["Execution"]):
    # Summary values kept in their own indexed columns, so the common sorts need no JSON.
    DENORMALISED = {
        ("loss", "last"): "final_loss",
        ("val_loss", "last"): "final_val_loss",
        ("val_loss", "best"): "best_val_loss",
        ("test_loss", "test"): "test_loss",
    }

    def order_by_metric(self, metric: str, which: str = "last", descending: bool | None = None) -> ExecutionQuerySet:
        """Order by a summary value: ``which`` is ``last``, ``best`` or ``test`` (for ``test_*``).

        ``descending`` defaults to the metric's direction (best first); executions without the
        metric come last. ``loss``/``val_loss``/``test_loss`` use indexed columns, others JSON::

            experiment.executions.order_by_metric("val_accuracy", "best")
        """
        if descending is None:
            descending = higher_is_better(metric)
        column = self.DENORMALISED.get((metric, which))
        expression: models.F | Cast
        if column is not None:
            expression = models.F(column)
        elif which == "test":
            expression = Cast(KeyTextTransform(metric, "test_metrics"), models.FloatField())
        else:
            expression = Cast(KeyTextTransform(which, KeyTransform(metric, "summary")), models.FloatField())
        ordered = expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
        return self.order_by(ordered, "-started_at", "pk")


class Execution(models.Model):
    """One run: an ``<experiment>/executions/<folder>/`` folder, or a queued run that has none yet."""

    Status = Status

    # PROTECT: deleting an experiment's row must never take its runs with it; runs leave through the trash.
    experiment = models.ForeignKey(
        Experiment,
        on_delete=models.PROTECT,
        related_name="executions",
        help_text="The experiment whose folder holds this run.",
    )
    # NULL (not "") while a queued run has no folder yet: NULLs never collide in the unique
    # constraint, so any number of queued runs can wait, and sync can upsert on the constraint.
    folder_name = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        help_text="The folder's name under executions/, e.g. 06-16-31__08-04-2019.",
    )
    folder_path = models.TextField(blank=True, help_text="The folder's absolute path when it was last synced.")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, help_text="Where the run stands."
    )
    title = models.CharField(
        max_length=255,
        blank=True,
        help_text="As edited on the run's page (its curation.json), else the config's experiment.name.",
    )
    tags = models.JSONField(
        default=list,
        blank=True,
        help_text="As edited on the run's page (its curation.json), else the config's experiment.tags.",
    )
    config = models.JSONField(
        null=True, blank=True, help_text="training_config.json as written (null if it is unreadable)."
    )
    elapsed = json_object("Seconds per stage, from metrics.json's elapsed.")
    hardware = json_object("The machine it trained on, from metrics.json's hardware.")
    trackers = json_object("trackers.json: TensorBoard log dir, MLflow run id.")
    summary = json_object('Per-epoch metric -> {"last", "best", "best_epoch"}; null for NaN/Infinity.')
    test_metrics = json_object('Test metrics by name, e.g. {"test_loss": 22.4}.')
    epochs = models.PositiveIntegerField(default=0, help_text="Epochs run (the longest per-epoch history).")
    final_loss = models.FloatField(
        null=True, blank=True, help_text="loss at the last epoch (a copy of the summary, for sorting)."
    )
    final_val_loss = models.FloatField(null=True, blank=True, help_text="val_loss at the last epoch (for sorting).")
    best_val_loss = models.FloatField(null=True, blank=True, help_text="Lowest val_loss of any epoch (for sorting).")
    test_loss = models.FloatField(null=True, blank=True, help_text="test_loss (for sorting).")
    artifacts = models.JSONField(
        default=list, blank=True, help_text='model.h5 and callbacks/** files: [{"path": ..., "bytes": ...}].'
    )
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="The log's first line, or the folder name's time."
    )
    finished_at = models.DateTimeField(null=True, blank=True, help_text="The log's last line once metrics.json exists.")
    error = models.TextField(
        blank=True,
        help_text="Why the run failed, then anything sync could not read in its folder (each line names its file).",
    )
    fingerprint = models.CharField(
        max_length=64, blank=True, help_text="Hash of the folder's file names, sizes and mtimes when last synced."
    )
    folder_stamp = models.TextField(
        blank=True,
        default="",
        help_text="A run that ended: its directories' inodes and times when last synced (sync stats them instead of "
        "listing its files; experiments.index.stamps). Empty: listed every time.",
    )
    synced_at = models.DateTimeField(null=True, blank=True, help_text="When sync last read the folder.")
    # Set for runs launched through the queue (the web form, the API, `up --enqueue`).
    epochs_total = models.PositiveIntegerField(
        null=True, blank=True, help_text="Epochs the config asks for (the M of 'epoch N of M')."
    )
    queue = models.CharField(max_length=32, blank=True, help_text="The RQ queue the run was sent to: default or gpu.")
    job_id = models.CharField(max_length=64, blank=True, help_text="The RQ job that runs it, e.g. execution-42.")
    launched_by = person("launched_executions", "Who queued it (empty for CLI runs and synced folders).")
    worker = models.CharField(max_length=255, blank=True, help_text="The RQ worker that claimed it.")
    attempts = models.PositiveIntegerField(
        default=0,
        help_text="How many times it was queued again to go on from its kept state after its worker died.",
    )
    # Lineage (#23): a fork starts from weights its parent saved; SET_NULL, so deleting a parent leaves its forks.
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="The run it was forked from (it started from that run's weights); empty for a run of its own.",
    )
    forked_at_epoch = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The parent's epoch its weights were taken at: its own epoch N is the parent's epoch "
        "forked_at_epoch + N on a shared axis.",
    )
    fork_start = json_object(
        'Where a fork starts, for its worker: {"folder": parent folder, "file": path in it, "optimizer": kept?, '
        '"why": why it is not}; {} for a run of its own.'
    )
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last sign of life of the work horse while running; a stale one means the worker was lost.",
    )
    # Hyperparameters, curation, system load and evaluation: what later features read and write.
    params = json_object('The config flattened (pipeline.params.flatten): {"training.batch_size": 32, ...}.')
    notes = models.TextField(
        blank=True, help_text="What the team wrote about the run (Markdown; kept in the folder too)."
    )
    archived = models.BooleanField(
        default=False, help_text="Hidden from the default tables and charts (kept in the folder's sidecar too)."
    )
    status_before_delete = models.CharField(
        max_length=16, blank=True, help_text="The status a deleted run had, which restoring it gives back."
    )
    status_before_missing = models.CharField(
        max_length=16,
        blank=True,
        help_text="The status a run had when its folder went missing, which it comes back to with its folder.",
    )
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="When it was moved to the trash.")
    deleted_by = person("deleted_executions", "Who moved it to the trash.")
    size_bytes = models.BigIntegerField(null=True, blank=True, help_text="The folder's size on disk, in bytes.")
    checkpoint_bytes = models.BigIntegerField(
        null=True, blank=True, help_text="Of which checkpoints (callbacks/**/*.h5, .keras), in bytes."
    )
    system = json_object('What the run cost the machine (system_metrics.jsonl): {"peak_memory_mb": ..., ...}.')
    steps = json_object(
        'Per-step metrics (steps.h5), a summary per metric: {"loss": {"count", "min", "max", "last"}}; '
        "the series stay in the file."
    )
    evaluation = json_object('Headline numbers of evaluation.json: {"accuracy": ...} or {"r2": ..., "rmse": ...}.')
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the row was created.")
    updated_at = models.DateTimeField(auto_now=True, help_text="When the row last changed.")

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            # One row per folder; sync upserts on it, so concurrent syncs cannot duplicate a run.
            models.UniqueConstraint(fields=["experiment", "folder_name"], name="execution_unique_folder"),
        ]
        indexes = [
            # An experiment's executions, newest first (the experiment page's default order).
            models.Index(fields=["experiment", "-started_at"], name="execution_by_date"),
            # An experiment's executions with one status, newest first (the status filter).
            models.Index(fields=["experiment", "status", "-started_at"], name="execution_by_status"),
            # An experiment's executions sorted by a summary metric (order_by_metric's columns).
            models.Index(fields=["experiment", "final_loss"], name="execution_by_final_loss"),
            models.Index(fields=["experiment", "final_val_loss"], name="execution_by_final_val_loss"),
            models.Index(fields=["experiment", "best_val_loss"], name="execution_by_best_val_loss"),
            models.Index(fields=["experiment", "test_loss"], name="execution_by_test_loss"),
            # The queue page and the lost-worker check: runs with a status, oldest first.
            models.Index(fields=["status", "created_at"], name="execution_by_status_age"),
            # The trash page: deleted runs, most recently deleted first.
            models.Index(fields=["status", "-deleted_at"], name="execution_by_deletion"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.name}/{self.folder_name or f'queued #{self.pk}'}"

    def history(self, metric: str) -> list[float | None]:
        """One metric's values by epoch (``[]`` if the run did not log it)."""
        row = self.histories.filter(name=metric).values_list("values", flat=True).first()
        return row or []

    def set_metrics(self, metrics: dict[str, Any]) -> None:
        """Fill the summary fields from ``{name: [values]}`` (NaN/Infinity already null).

        ``test_*`` metrics (one value each) go to ``test_metrics``; the rest are per epoch.
        """
        per_epoch = {name: values for name, values in metrics.items() if is_epoch_metric(name)}
        self.summary = {name: summarise(values, name) for name, values in per_epoch.items()}
        self.test_metrics = {
            name: (values[-1] if values else None) for name, values in metrics.items() if name.startswith("test_")
        }
        self.epochs = max((len(values) for values in per_epoch.values()), default=0)
        self.final_loss = self.summary.get("loss", {}).get("last")
        self.final_val_loss = self.summary.get("val_loss", {}).get("last")
        self.best_val_loss = self.summary.get("val_loss", {}).get("best")
        self.test_loss = self.test_metrics.get("test_loss")


class MetricHistory(models.Model):
    """One metric of one execution: its value at every epoch (one value for ``test_*``)."""

    execution = models.ForeignKey(
        Execution, on_delete=models.CASCADE, related_name="histories", help_text="The execution that logged it."
    )
    name = models.CharField(max_length=255, help_text="The metric's name in metrics.json, e.g. val_loss.")
    values = models.JSONField(
        default=list, help_text="The value at each epoch, in order; null where it was NaN/Infinity."
    )
    # Pages and the API read these two, never ``values``: a history of millions of epochs costs them
    # no more than one of a hundred. Set from ``values`` by ``save`` and ``MetricHistory.objects.store``.
    length = models.PositiveIntegerField(default=0, help_text="How many values it holds (epochs, for most metrics).")
    chart = models.JSONField(
        default=dict,
        help_text='What a chart draws of it: {"x": [epoch from 1, ...], "y": [value, ...]}, at most 2,000 points, '
        "each stretch's lowest and highest value kept, so a spike stays visible; all of it when it is shorter.",
    )

    objects = MetricHistoryQuerySet.as_manager()

    class Meta:
        ordering = ["execution", "name"]
        verbose_name_plural = "metric histories"
        constraints = [
            # A chart reads one execution's series by name; sync upserts on it.
            models.UniqueConstraint(fields=["execution", "name"], name="metric_history_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.length} values)"

    def fill_chart(self) -> None:
        """Set ``length`` and ``chart`` from ``values`` (``save`` does; a queryset's ``update`` does not)."""
        self.length = len(self.values)
        epochs, values = downsample(self.values)
        self.chart = {"x": epochs, "y": values}

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.fill_chart()
        super().save(*args, **kwargs)
