"""Projects and roles: every existing experiment (and so every run) goes into ``default``.

A fresh install gets ``default`` alone, so one team never notices projects. Numbered 0016: 0015 is
another change's (execution lineage); the two are independent.
"""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import experiments.models.projects


def create_default_project(apps, schema_editor):
    apps.get_model("experiments", "Project").objects.get_or_create(name="default")


def existing_experiments_into_default(apps, schema_editor):
    default = apps.get_model("experiments", "Project").objects.get(name="default")
    apps.get_model("experiments", "Experiment").objects.filter(project__isnull=True).update(project=default)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("experiments", "0015_execution_lineage"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Project",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "name",
                    models.CharField(
                        help_text="Its name, also its folder's under <trainings root>/projects/ (default's runs stay at the root).",
                        max_length=63,
                        unique=True,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[a-z0-9][a-z0-9_-]{0,62}$",
                                "A project's name is 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or a digit (it names a folder), e.g. vision-team.",
                            )
                        ],
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, help_text="When it was created.")),
            ],
            options={
                "ordering": ["name"],
            },
        ),
        migrations.CreateModel(
            name="ProjectRole",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "role",
                    models.CharField(
                        choices=[
                            ("viewer", "viewer: reads everything of the project"),
                            (
                                "editor",
                                "editor: also launches, cancels, sweeps, edits notes and tags, archives, shares",
                            ),
                            (
                                "maintainer",
                                "maintainer: also deletes and restores, prunes, manages members and alert rules",
                            ),
                        ],
                        help_text="What the holder may do in the project.",
                        max_length=16,
                    ),
                ),
            ],
            options={
                "ordering": ["project", "role", "pk"],
            },
        ),
        migrations.AddField(
            model_name="apitoken",
            name="read_only",
            field=models.BooleanField(
                default=False,
                help_text="It may only read (GET), whatever its user's role: for a dashboard or a reviewer.",
            ),
        ),
        migrations.AlterField(
            model_name="experiment",
            name="name",
            field=models.CharField(
                help_text="The folder's name, e.g. boston_housing; unique in its project.", max_length=255
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="project",
            field=models.ForeignKey(
                blank=True,
                help_text="The one project it may act in (empty: every project its user may); its user's role there still applies.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="api_tokens",
                to="experiments.project",
            ),
        ),
        migrations.RunPython(create_default_project, migrations.RunPython.noop),
        migrations.AddField(
            model_name="experiment",
            name="project",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="experiments",
                to="experiments.project",
            ),
        ),
        migrations.RunPython(existing_experiments_into_default, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="experiment",
            name="project",
            field=models.ForeignKey(
                default=experiments.models.projects.default_project_id,
                help_text="The project it belongs to (its folder's place says so); default unless another is named.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="experiments",
                to="experiments.project",
            ),
        ),
        migrations.AddConstraint(
            model_name="experiment",
            constraint=models.UniqueConstraint(fields=("project", "name"), name="experiment_unique_name_in_project"),
        ),
        migrations.AddField(
            model_name="projectrole",
            name="group",
            field=models.ForeignKey(
                blank=True,
                help_text="The group whose every member holds it (or leave empty and name a user).",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="project_roles",
                to="auth.group",
            ),
        ),
        migrations.AddField(
            model_name="projectrole",
            name="project",
            field=models.ForeignKey(
                help_text="The project the role is in.",
                on_delete=django.db.models.deletion.CASCADE,
                related_name="roles",
                to="experiments.project",
            ),
        ),
        migrations.AddField(
            model_name="projectrole",
            name="user",
            field=models.ForeignKey(
                blank=True,
                help_text="The user who holds it (or leave empty and name a group).",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="project_roles",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddConstraint(
            model_name="projectrole",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("group__isnull", True), ("user__isnull", False)),
                    models.Q(("group__isnull", False), ("user__isnull", True)),
                    _connector="OR",
                ),
                name="project_role_user_xor_group",
                violation_error_message="A role is held by a user or by a group: name exactly one of them.",
            ),
        ),
        migrations.AddConstraint(
            model_name="projectrole",
            constraint=models.UniqueConstraint(
                condition=models.Q(("user__isnull", False)),
                fields=("project", "user"),
                name="project_role_one_per_user",
            ),
        ),
        migrations.AddConstraint(
            model_name="projectrole",
            constraint=models.UniqueConstraint(
                condition=models.Q(("group__isnull", False)),
                fields=("project", "group"),
                name="project_role_one_per_group",
            ),
        ),
    ]
