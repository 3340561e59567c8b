"""The search index: each run's values by name (params, metrics, system, evaluation, tags, size) and the
journal of run counts, both kept by triggers on the executions table (experiments/search/triggers.py)."""

import django.db.models.deletion
from django.db import migrations, models

from experiments.search import triggers


def install(apps, schema_editor):
    """The triggers and the indexes they serve, then every existing run's values and the counts."""
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        # Text sorts and compares by code point, as on SQLite, whatever the database's locale.
        schema_editor.execute('ALTER TABLE experiments_searchvalue ALTER COLUMN text TYPE varchar(255) COLLATE "C"')
    triggers.install(connection)


def uninstall(apps, schema_editor):
    triggers.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0007_curation_params_system_evaluation"),
    ]

    operations = [
        migrations.CreateModel(
            name="RunCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("status", models.CharField(help_text="The status whose count changed.", max_length=16)),
                ("archived", models.BooleanField(help_text="Whether the runs counted are archived.")),
                ("delta", models.IntegerField(help_text="How many runs arrived (negative: left).")),
                (
                    "experiment",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        help_text="The experiment whose count changed.",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="experiments.experiment",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="KeyCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(help_text="The SearchValue name, e.g. metrics.val_loss.", max_length=255)),
                (
                    "state",
                    models.PositiveSmallIntegerField(
                        help_text="The SearchValue state counted (0 shown, 1 archived, 2 deleted)."
                    ),
                ),
                ("numeric", models.BooleanField(help_text="Whether the values counted are numbers (else text).")),
                ("delta", models.IntegerField(help_text="How many values arrived (negative: left).")),
                (
                    "experiment",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        help_text="The experiment whose runs' values changed.",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="experiments.experiment",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["experiment", "key", "state"], name="key_count_by_experiment")],
            },
        ),
        migrations.CreateModel(
            name="SearchValue",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "state",
                    models.PositiveSmallIntegerField(
                        choices=[(0, "Shown"), (1, "Archived"), (2, "Deleted")],
                        default=0,
                        help_text="0 shown, 1 archived, 2 deleted (a copy of the run's).",
                    ),
                ),
                (
                    "key",
                    models.CharField(
                        help_text="The name the query language uses, e.g. params.training.batch_size.", max_length=255
                    ),
                ),
                ("number", models.FloatField(blank=True, help_text="The value when it is a finite number.", null=True)),
                (
                    "text",
                    models.CharField(
                        blank=True,
                        help_text='The value when it is text (at most 200 characters) or "true"/"false".',
                        max_length=255,
                        null=True,
                    ),
                ),
                (
                    "execution",
                    models.ForeignKey(
                        db_index=False,
                        help_text="The run the value belongs to.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="search_values",
                        to="experiments.execution",
                    ),
                ),
                (
                    "experiment",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        help_text="The run's experiment (a copy, kept by the trigger).",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="experiments.experiment",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        condition=models.Q(("number__isnull", False)),
                        fields=["experiment", "key", "state", "number", "execution"],
                        name="search_value_by_number",
                    ),
                    models.Index(
                        condition=models.Q(("text__isnull", False)),
                        fields=["experiment", "key", "state", "text", "execution"],
                        name="search_value_by_text",
                    ),
                ],
                "constraints": [models.UniqueConstraint(fields=("execution", "key"), name="search_value_unique_key")],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
