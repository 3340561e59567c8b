"""What the experiment table filters, sorts and counts on, kept by the database itself.

``SearchValue`` holds every value of a run the query language names (``params.training.batch_size``,
``metrics.val_loss``, ``metrics.best.val_loss``, ``system.peak_memory_mb``, ``tags.baseline``...)
as one row, so that an index can answer "sort 100,000 runs by this param" or "does this run have
that tag" without reading every run's JSON. ``RunCount`` is a journal of +1/-1 per (experiment,
status, archived), so the experiments list and the table's page count never count every row.

Both are written by triggers on the executions table (``experiments.search.triggers``): every
writer of an execution (launch, the worker's epochs, sync's bulk writes, archive and delete, the
features beside the core) keeps them in step without knowing they exist.
"""

from __future__ import annotations

from django.db import models

from .executions import Execution, Experiment


class SearchValue(models.Model):
    """One named value of one execution: a number, or a text (strings, and ``true``/``false``)."""

    class State(models.IntegerChoices):
        SHOWN = 0
        ARCHIVED = 1
        DELETED = 2

    execution = models.ForeignKey(
        Execution,
        on_delete=models.CASCADE,
        related_name="search_values",
        db_index=False,  # the unique (execution, key) constraint's index serves it
        help_text="The run the value belongs to.",
    )
    # A copy of the run's experiment and visibility, so one index answers a sorted, visible page.
    experiment = models.ForeignKey(
        Experiment,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the two indexes below start with it
        related_name="+",
        help_text="The run's experiment (a copy, kept by the trigger).",
    )
    state = models.PositiveSmallIntegerField(
        choices=State.choices, default=State.SHOWN, help_text="0 shown, 1 archived, 2 deleted (a copy of the run's)."
    )
    key = models.CharField(
        max_length=255, help_text="The name the query language uses, e.g. params.training.batch_size."
    )
    number = models.FloatField(null=True, blank=True, help_text="The value when it is a finite number.")
    text = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        help_text='The value when it is text (at most 200 characters) or "true"/"false".',
    )

    class Meta:
        constraints = [
            # One value per run and name; a query's condition probes it per run (EXISTS ... key = ...).
            models.UniqueConstraint(fields=["execution", "key"], name="search_value_unique_key"),
        ]
        indexes = [
            # A page of an experiment sorted by a numeric column (a param, a metric), and which numeric
            # columns vary (their smallest and largest value).
            models.Index(
                fields=["experiment", "key", "state", "number", "execution"],
                condition=models.Q(number__isnull=False),
                name="search_value_by_number",
            ),
            # The same for text columns (the optimizer's name, an activation).
            models.Index(
                fields=["experiment", "key", "state", "text", "execution"],
                condition=models.Q(text__isnull=False),
                name="search_value_by_text",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.number if self.number is not None else self.text}"


class RunCount(models.Model):
    """One change of the number of runs of an experiment with a status: +1 when a run arrives, -1 when it leaves.

    The sum per (experiment, status, archived) is the count; reading compacts the journal now and then.
    """

    experiment = models.ForeignKey(
        Experiment,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the journal is read whole (a few rows once compacted)
        related_name="+",
        help_text="The experiment whose count changed.",
    )
    status = models.CharField(max_length=16, help_text="The status whose count changed.")
    archived = models.BooleanField(help_text="Whether the runs counted are archived.")
    delta = models.IntegerField(help_text="How many runs arrived (negative: left).")

    def __str__(self) -> str:
        return f"{self.experiment_id}/{self.status}{' (archived)' if self.archived else ''}: {self.delta:+d}"


class KeyCount(models.Model):
    """One change of how many runs of an experiment have a ``SearchValue`` name (as a number, or as text).

    The sum per (experiment, key, state, numeric) is the count: how many rows a sorted column's value
    index holds, so its last page is read from its end. Reading compacts the journal now and then.
    """

    experiment = models.ForeignKey(
        Experiment,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the index below starts with it
        related_name="+",
        help_text="The experiment whose runs' values changed.",
    )
    key = models.CharField(max_length=255, help_text="The SearchValue name, e.g. metrics.val_loss.")
    state = models.PositiveSmallIntegerField(
        help_text="The SearchValue state counted (0 shown, 1 archived, 2 deleted)."
    )
    numeric = models.BooleanField(help_text="Whether the values counted are numbers (else text).")
    delta = models.IntegerField(help_text="How many values arrived (negative: left).")

    class Meta:
        indexes = [
            # An experiment's columns and how many runs have each (the column chooser, a sorted page's size).
            models.Index(fields=["experiment", "key", "state"], name="key_count_by_experiment"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}/{self.key}[{self.state}]: {self.delta:+d}"
