"""Where a project's runs live, and how they get there (issue #26).

``default``'s runs stay at ``<root>/<experiment>/executions/<run>``; another project's are under
``<root>/projects/<project>/<experiment>/executions/<run>``: sync assigns what it finds by that rule,
``manage.py train --project`` and ``POST /api/executions?project=`` put runs there.
"""

import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from experiments.index.sync import sync_trainings
from experiments.models import Execution, Experiment, Project
from experiments.pipeline import ConfigError, load_config
from tests.folders import login, write_execution
from tests.helpers import tiny
from tests.test_train_command import train


def projects_of(root):
    return sorted(
        Execution.objects.values_list("experiment__project__name", "experiment__name", "folder_name").order_by("pk")
    )


@pytest.mark.django_db
def test_sync_assigns_each_folder_to_the_project_its_place_names(root):
    write_execution(root, name="06-00-00__01-01-2026", dataset="iris")
    write_execution(root / "projects" / "vision", name="07-00-00__01-01-2026", dataset="iris")
    write_execution(root / "projects" / "vision", name="08-00-00__01-01-2026", dataset="mnist")
    report = sync_trainings(root)
    assert report.indexed == 3
    assert projects_of(root) == [
        ("default", "iris", "06-00-00__01-01-2026"),
        ("vision", "iris", "07-00-00__01-01-2026"),
        ("vision", "mnist", "08-00-00__01-01-2026"),
    ]
    assert Experiment.objects.filter(name="iris").count() == 2  # each team its own iris
    assert not Experiment.objects.filter(name="projects").exists()
    again = sync_trainings(root)
    assert (again.indexed, again.unchanged, again.missing) == (0, 3, 0)


@pytest.mark.django_db
def test_a_folder_under_projects_that_cannot_be_a_project_is_left_out_and_said(root):
    write_execution(root / "projects" / "Not A Name", name="07-00-00__01-01-2026", dataset="iris")
    report = sync_trainings(root)
    assert report.indexed == 0
    assert report.problems == ["projects/Not A Name: not a project's name; left out"]
    assert list(Project.objects.values_list("name", flat=True)) == ["default"]


def test_projects_is_a_reserved_folder_name(tmp_path):
    data = tmp_path / "projects.csv"
    data.write_text("rooms,area,price\n1,20,100\n2,40,210\n3,65,290\n")
    config = tiny()
    config["dataset"] = {"path": str(data), "target": "price"}
    with pytest.raises(ConfigError, match="reserved") as raised:
        load_config(config)
    assert [problem.path for problem in raised.value.problems] == ["dataset.path"]


@pytest.mark.training
@pytest.mark.django_db
def test_a_run_trained_for_a_project_lands_in_its_folder_and_sync_gives_it_to_the_project(tmp_path, settings):
    done = train(tiny(), tmp_path, "--project", "vision")
    assert done.returncode == 0, done.stderr
    folder = done.stdout.strip().splitlines()[-1]
    trainings = tmp_path / "trainings"
    assert folder.startswith(str(trainings / "projects" / "vision" / "boston_housing" / "executions") + "/")
    settings.GYMNOS_TRAININGS_ROOT = trainings
    sync_trainings(trainings)
    run = Execution.objects.select_related("experiment__project").get()
    assert (run.experiment.project.name, run.status) == ("vision", "succeeded")
    assert not (trainings / "boston_housing").exists()  # nothing of it at default's place


def test_train_refuses_a_project_name_that_cannot_be_a_folder(tmp_path):
    done = train(tiny(), tmp_path, "--project", "../elsewhere")
    assert done.returncode != 0
    assert "--project '../elsewhere'" in done.stderr
    assert not (tmp_path / "trainings").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("real_queues")
def test_launching_through_the_api_names_the_project(client):
    vision = Project.objects.create(name="vision")
    people = {name: User.objects.create_user(name, password=f"pw-{name}-123") for name in ("vera", "eddie", "otto")}
    call_command("project", "grant", "vision", "vera", "viewer")
    call_command("project", "grant", "vision", "eddie", "editor")
    body = {"data": json.dumps(tiny()), "content_type": "application/json"}
    hidden = login(people["otto"]).post("/api/executions?project=vision", **body)
    assert hidden.status_code == 404
    refused = login(people["vera"]).post("/api/executions?project=vision", **body)
    assert refused.status_code == 403
    assert "editor role in project vision" in refused.json()["detail"]
    launched = login(people["eddie"]).post("/api/executions?project=vision", **body)
    assert launched.status_code == 201, launched.content
    run = Execution.objects.select_related("experiment").get(pk=launched.json()["id"])
    assert run.experiment.project == vision
    assert Execution.objects.count() == 1
