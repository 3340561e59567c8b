"""Upgrading keeps what was there: a token made before tokens were hashed goes on working."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from experiments.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("experiments", target)])
    return executor.loader.project_state([("experiments", target)]).apps


def test_an_api_token_from_before_hashing_still_authenticates_and_is_no_longer_stored(django_user_model):
    old = migrate("0003_share_links_and_publish_tokens")
    user = old.get_model("auth", "User").objects.create(username="grace")
    old.get_model("experiments", "ApiToken").objects.create(
        user_id=user.pk, key="an-old-plaintext-key-of-43-characters-xxxxx"
    )
    try:
        migrate("0016_projects")  # the latest that changes tokens (the model as it is now reads it)
        user = ApiToken.user_for("an-old-plaintext-key-of-43-characters-xxxxx")
        assert user is not None
        assert user.username == "grace"
        assert ApiToken.user_for("an-old-plaintext-key-of-43-characters-xxxxy") is None
        stored = ApiToken.objects.get(user__username="grace")
        assert stored.prefix == "an-old-p"
        assert "plaintext" not in stored.digest
        with connection.cursor() as cursor:
            columns = [
                column.name for column in connection.introspection.get_table_description(cursor, "experiments_apitoken")
            ]
        assert "key" not in columns
    finally:
        call_command("migrate", verbosity=0)  # every app's latest schema, for the tests after this one


def test_every_experiment_there_was_goes_into_the_default_project():
    old = migrate("0014_execution_steps")
    experiment = old.get_model("experiments", "Experiment").objects.create(name="boston_housing")
    old.get_model("experiments", "Execution").objects.create(experiment_id=experiment.pk, folder_name="06-16-31")
    try:
        new = migrate("0016_projects")
        Project = new.get_model("experiments", "Project")
        assert list(Project.objects.values_list("name", flat=True)) == ["default"]
        moved = new.get_model("experiments", "Experiment").objects.get(name="boston_housing")
        assert moved.project_id == Project.objects.get(name="default").pk
        assert new.get_model("experiments", "Execution").objects.get().experiment_id == moved.pk
    finally:
        call_command("migrate", verbosity=0)
