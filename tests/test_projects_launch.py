"""Launching into a project (issue #26, the launch side): the new-run form's project choice, sweeps into a
project (API and command line), and emptying only the trash of the projects where one is a maintainer.

Actors: ``eddie`` launches in default (``add_execution``), is an editor of vision and a viewer of nlp; ``vera``
is a viewer of vision; ``otto`` a member of nlp only; ``solo`` an editor of vision with no global permission.
A project ``secret`` exists that none of them is a member of.
"""

import datetime as dt
import io
import json
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.utils import timezone

from experiments.curation.trash import trash_path
from experiments.models import Execution, Experiment, Project, Status
from sweeps.models import Sweep
from sweeps.tasks import advance_sweep
from tests.folders import login
from tests.forms import form_for
from tests.helpers import tiny

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("real_queues")]

SWEEP = {
    "name": "width",
    "base": tiny(),
    "parameters": {"model.network[0].units": {"choice": [4, 8]}},
    "method": "grid",
    "parallel": 2,
}


def person(name, *permissions):
    user = User.objects.create_user(name, password=f"pw-{name}-123")
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def team():
    for name in ("vision", "nlp", "secret"):
        Project.objects.create(name=name)
    actors = {
        "eddie": person("eddie", "add_execution"),
        "vera": person("vera"),
        "otto": person("otto"),
        "solo": person("solo"),
    }
    for name, project, role in (
        ("eddie", "vision", "editor"),
        ("eddie", "nlp", "viewer"),
        ("vera", "vision", "viewer"),
        ("otto", "nlp", "maintainer"),
        ("solo", "vision", "editor"),
    ):
        call_command("project", "grant", project, name, role)
    return actors


def project_field(page):
    """The project field as the page renders it: ("select", its options) or ("hidden", its value)."""
    select = re.search(r'<select name="project"[^>]*>(.*?)</select>', page, re.S)
    if select:
        return "select", re.findall(r'<option value="([^"]*)"', select.group(1))
    hidden = re.search(r'<input type="hidden" name="project" value="([^"]*)"', page)
    return ("hidden", hidden.group(1)) if hidden else (None, None)


# --- the new-run form ---------------------------------------------------------------------------


def test_a_one_team_install_shows_no_project_choice(owner_client):
    page = owner_client.get("/runs/new/").content.decode()
    assert project_field(page) == ("hidden", "default")
    assert owner_client.post("/runs/new/", form_for(tiny())).status_code == 302
    assert Execution.objects.select_related("experiment__project").get().experiment.project.name == "default"


def test_the_choice_is_the_projects_where_one_may_launch_and_the_run_goes_there(team):
    client = login(team["eddie"])
    assert project_field(client.get("/runs/new/").content.decode()) == ("select", ["default", "vision"])
    response = client.post("/runs/new/", form_for(tiny(), project="vision"))
    assert response.status_code == 302
    run = Execution.objects.select_related("experiment__project").get()
    assert (run.experiment.project.name, run.launched_by) == ("vision", team["eddie"])
    assert response["Location"] == f"/executions/{run.pk}/"
    assert login(team["vera"]).get(response["Location"]).status_code == 200  # vision's viewer sees it
    assert login(team["otto"]).get(response["Location"]).status_code == 404


def test_one_who_may_launch_only_in_one_project_launches_there_without_choosing(team):
    client = login(team["solo"])  # no add_execution: default is not theirs to launch in
    assert project_field(client.get("/runs/new/").content.decode()) == ("hidden", "vision")
    form = form_for(tiny())
    assert client.post("/runs/new/", form).status_code == 302  # no project posted: the form's own
    assert Execution.objects.select_related("experiment__project").get().experiment.project.name == "vision"


@pytest.mark.parametrize("project", ["nlp", "secret", "nosuch", "../../etc"])
def test_a_project_one_may_not_launch_in_is_refused_at_the_field_and_nothing_is_queued(team, project):
    response = login(team["eddie"]).post("/runs/new/", form_for(tiny(), project=project))
    assert response.status_code == 200
    page = response.content.decode()
    # The same words for a project they only read (nlp), one they may not see (secret) and none at all.
    assert f"project: {project} is not a project where you may launch runs." in page
    assert not Execution.objects.exists()


def test_the_one_choice_hidden_still_refuses_another_and_says_so(team):
    response = login(team["solo"]).post("/runs/new/", form_for(tiny(), project="default"))
    assert response.status_code == 200
    assert 'id="project-errors"' in response.content.decode()
    assert "project: default is not a project where you may launch runs." in response.content.decode()
    assert not Execution.objects.exists()


def test_one_who_may_launch_nowhere_is_refused_as_before(team):
    assert login(team["vera"]).post("/runs/new/", form_for(tiny(), project="vision")).status_code == 403
    assert not Execution.objects.exists()


# --- sweeps ---------------------------------------------------------------------------------------


def post_sweep(client, query=""):
    return client.post(f"/api/sweeps{query}", json.dumps(SWEEP), content_type="application/json")


def test_a_sweep_launched_into_a_project_is_that_projects_and_its_trials_train_there(team):
    response = post_sweep(login(team["eddie"]), "?project=vision")
    assert response.status_code == 201, response.content
    sweep = Sweep.objects.get(pk=response.json()["id"])
    assert sweep.project == Project.objects.get(name="vision")
    advance_sweep(sweep.pk)  # what the worker does first: asks for the trials and queues their runs
    trials = Execution.objects.select_related("experiment__project").filter(sweep_trial__sweep=sweep)
    assert trials.count() == 2
    assert {run.experiment.project.name for run in trials} == {"vision"}
    assert login(team["vera"]).get(f"/api/sweeps/{sweep.pk}").status_code == 200
    assert login(team["otto"]).get(f"/api/sweeps/{sweep.pk}").status_code == 404
    assert login(team["otto"]).get(f"/sweeps/{sweep.pk}/").status_code == 404


def test_a_sweep_into_a_project_one_may_not_launch_in_is_refused_and_nothing_is_made(team):
    client = login(team["eddie"])
    read_only = post_sweep(client, "?project=nlp")
    assert read_only.status_code == 403
    assert "editor role in project nlp" in read_only.json()["detail"]
    for hidden in ("secret", "nosuch"):
        answer = post_sweep(client, f"?project={hidden}")
        assert answer.status_code == 404
        assert answer.json()["detail"] == f"no project named {hidden!r} that you may see; GET /api/projects lists yours"
    assert not Sweep.objects.exists()


def test_the_new_sweep_page_launches_into_the_project_chosen_and_refuses_another(team):
    client = login(team["eddie"])
    page = client.get("/sweeps/new/").content.decode()
    assert re.findall(r'<option value="([^"]*)"', page.split('name="project"')[1].split("</select>")[0]) == [
        "default",
        "vision",
    ]
    document = json.dumps(SWEEP)
    for refused in ("nlp", "secret"):
        page = client.post("/sweeps/new/", {"document": document, "project": refused}).content.decode()
        assert f"{refused} is not a project where you may launch runs" in page
    assert not Sweep.objects.exists()
    assert client.post("/sweeps/new/", {"document": document, "project": "vision"}).status_code == 302
    assert Sweep.objects.get().project == Project.objects.get(name="vision")


def test_a_one_team_install_sees_no_project_on_the_new_sweep_page_and_its_sweeps_stay_default(owner_client):
    page = owner_client.get("/sweeps/new/").content.decode()
    assert '<input type="hidden" name="project" value="default">' in page
    assert "<select" not in page.split('id="sweep-document"')[1]
    assert owner_client.post("/sweeps/new/", {"document": json.dumps(SWEEP)}).status_code == 302
    assert Sweep.objects.get().project == Project.default()


def test_a_sweep_cannot_start_from_a_run_of_a_project_one_may_not_see(team):
    hidden_run = Execution.objects.create(
        experiment=Experiment.objects.create(project=Project.objects.get(name="secret"), name="iris"),
        folder_name="07-00-00__01-01-2026",
        status=Status.SUCCEEDED,
        config=tiny(),
    )
    client = login(team["eddie"])
    page = client.get("/sweeps/new/").content.decode()
    assert f'<option value="{hidden_run.pk}"' not in page
    answer = client.post("/api/sweeps", json.dumps({**SWEEP, "base": hidden_run.pk}), content_type="application/json")
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["message"].startswith(f"there is no run {hidden_run.pk}")
    assert not Sweep.objects.exists()


def test_the_sweep_command_launches_into_the_project_it_names(team, tmp_path):
    from sweeps.management.commands.sweep import run_sweep

    document = tmp_path / "sweep.json"
    document.write_text(json.dumps(SWEEP))
    err = io.StringIO()
    code, sweep = run_sweep(str(document), io.StringIO(), err, project="../vision")
    assert (code, sweep) == (2, None)
    assert "--project '../vision': no such project" in err.getvalue()
    assert not Sweep.objects.exists()


# --- the trash ------------------------------------------------------------------------------------


def deleted_run(project, title):
    """A run of ``project`` deleted long ago: its folder in the trash."""
    experiment, _ = Experiment.objects.get_or_create(project=project, name="iris")
    long_ago = timezone.now() - dt.timedelta(days=90)
    folder = f"07-00-0{Execution.objects.count()}__01-01-2026"
    run = Execution.objects.create(
        experiment=experiment, folder_name=folder, title=title, status=Status.DELETED, deleted_at=long_ago, size_bytes=0
    )
    trash_path(run).mkdir(parents=True)
    return run


def test_emptying_the_trash_empties_only_the_projects_one_maintains(team, root):
    maya = person("maya")
    call_command("project", "grant", "vision", "maya", "maintainer")
    ours = deleted_run(Project.objects.get(name="vision"), "ours")
    theirs = deleted_run(Project.objects.get(name="nlp"), "theirs")
    defaults = deleted_run(Project.default(), "defaults")
    client = login(maya)
    page = client.get("/trash/").content.decode()
    assert "Empties the trash of the project where you are a maintainer: vision." in page
    response = client.post("/trash/empty/", {"older_than": 0}, follow=True)
    assert "in the projects where you are a maintainer: vision" in response.content.decode()
    assert not Execution.objects.filter(pk=ours.pk).exists()
    assert set(Execution.objects.values_list("pk", flat=True)) == {theirs.pk, defaults.pk}
    assert not trash_path(ours).exists()
    assert trash_path(theirs).is_dir()
    assert trash_path(defaults).is_dir()
    assert login(team["vera"]).post("/trash/empty/", {"older_than": 0}).status_code == 403
