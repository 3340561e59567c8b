"""Projects and roles (issue #26): who sees what, who may act, and how roles are given.

Actors: ``vera`` is a viewer of project vision, ``eddie`` an editor of it, ``maya`` its maintainer,
``otto`` a member of another project (nlp) only, ``stan`` staff but a member of nothing. Each project
has an experiment called iris, so a name alone says nothing about whose runs are whose.
"""

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from audit.models import Entry
from experiments.models import ApiToken, Execution, Experiment, Project, ProjectRole, Status
from experiments.search import counts
from tests.folders import login

pytestmark = pytest.mark.django_db


def person(name, **flags):
    return User.objects.create_user(name, password=f"pw-{name}-123", **flags)


@pytest.fixture
def vision():
    return Project.objects.create(name="vision")


@pytest.fixture
def nlp():
    return Project.objects.create(name="nlp")


def run_in(project, name="iris", folder="07-00-00__06-12-2026", status=Status.SUCCEEDED):
    experiment, _ = Experiment.objects.get_or_create(project=project, name=name)
    return Execution.objects.create(experiment=experiment, folder_name=folder, status=status)


@pytest.fixture
def team(vision, nlp):
    """The actors, each with their role (given as the command line gives it)."""
    actors = {name: person(name) for name in ("vera", "eddie", "maya", "otto")}
    actors["stan"] = person("stan", is_staff=True)
    for name, project, role in (
        ("vera", "vision", "viewer"),
        ("eddie", "vision", "editor"),
        ("maya", "vision", "maintainer"),
        ("otto", "nlp", "maintainer"),
    ):
        call_command("project", "grant", project, name, role)
    return actors


@pytest.fixture
def vision_run(vision):
    return run_in(vision, status=Status.RUNNING)


# --- the default project: one team never notices ------------------------------------------------


def test_a_fresh_install_has_the_default_project_alone_and_new_experiments_go_into_it():
    assert list(Project.objects.values_list("name", flat=True)) == ["default"]
    experiment = Experiment.objects.create(name="boston_housing")
    assert experiment.project.name == "default"


def test_in_default_a_user_without_a_role_keeps_what_their_permissions_gave(team):
    run = run_in(Project.default(), status=Status.RUNNING)
    plain = login(person("tom"))
    assert plain.get(f"/api/executions/{run.pk}").status_code == 200
    answer = plain.post(f"/api/executions/{run.pk}/cancel")
    assert answer.status_code == 403
    assert "experiments.add_execution" in answer.json()["detail"]
    assert plain.get("/api/projects").json() == [{"name": "default", "role": "viewer"}]
    launcher = person("ada")
    launcher.user_permissions.add(Permission.objects.get(codename="add_execution"))
    assert login(launcher).get("/api/projects").json() == [{"name": "default", "role": "editor"}]


# --- seeing: 404 for what one may not see -------------------------------------------------------


def test_a_run_of_another_project_is_not_there_for_a_non_member(team, vision_run):
    for name in ("otto", "stan"):
        client = login(team[name])
        assert client.get(f"/api/executions/{vision_run.pk}").status_code == 404
        assert client.get(f"/api/executions/{vision_run.pk}/log").status_code == 404
        assert client.post(f"/api/executions/{vision_run.pk}/cancel").status_code == 404
        page = client.get(f"/experiments/iris/executions/{vision_run.folder_name}/")
        assert page.status_code == 404


def test_a_member_sees_the_run_and_the_projects_experiment(team, vision_run):
    client = login(team["vera"])
    assert client.get(f"/api/executions/{vision_run.pk}").json()["id"] == vision_run.pk
    page = client.get(f"/experiments/iris/executions/{vision_run.folder_name}/")
    assert page.status_code == 200
    names = [(row["project"], row["name"]) for row in client.get("/api/experiments").json()]
    assert names == [("vision", "iris")]


def test_search_answers_only_the_runs_the_caller_may_see_and_filters_by_project(team, vision_run, nlp):
    run_in(nlp, folder="08-00-00__06-12-2026")
    default_run = run_in(Project.default(), folder="09-00-00__06-12-2026")
    vera = login(team["vera"])
    found = {item["id"] for item in vera.get("/api/executions").json()["items"]}
    assert found == {vision_run.pk, default_run.pk}
    only = vera.get("/api/executions", {"q": 'project = "vision"'}).json()["items"]
    assert [item["id"] for item in only] == [vision_run.pk]


def test_each_project_counts_its_own_iris_from_the_journal(team, vision, nlp):
    run_in(vision, folder="a")
    run_in(vision, folder="b")
    run_in(nlp, folder="c")
    vision_iris = Experiment.objects.get(project=vision, name="iris")
    nlp_iris = Experiment.objects.get(project=nlp, name="iris")
    assert counts.total(vision_iris.pk) == 2
    assert counts.total(nlp_iris.pk) == 1
    rows = login(team["otto"]).get("/api/experiments").json()
    assert [(row["project"], row["runs"]) for row in rows] == [("nlp", 1)]


# --- acting: 403 naming the role ----------------------------------------------------------------


def test_a_viewer_may_not_cancel_and_is_told_the_role_it_needs(team, vision_run):
    answer = login(team["vera"]).post(f"/api/executions/{vision_run.pk}/cancel")
    assert answer.status_code == 403
    assert answer.json()["detail"] == (
        "You need the editor role in project vision to launch or cancel runs. Ask its maintainer."
    )


def test_editing_needs_an_editor_and_deleting_a_maintainer(team, vision_run):
    edit = {"notes": "lr too high"}
    refused = login(team["vera"]).patch(f"/api/executions/{vision_run.pk}", edit, content_type="application/json")
    assert refused.status_code == 403
    assert "editor role in project vision" in refused.json()["detail"]
    deleted = login(team["eddie"]).delete(f"/api/executions/{vision_run.pk}")
    assert deleted.status_code == 403
    assert "maintainer role in project vision" in deleted.json()["detail"]
    assert Execution.objects.get(pk=vision_run.pk).notes == ""


def test_a_role_given_to_a_group_holds_for_its_members(vision, vision_run):
    students = Group.objects.create(name="students")
    gus = person("gus")
    gus.groups.add(students)
    assert login(gus).get(f"/api/executions/{vision_run.pk}").status_code == 404
    call_command("project", "grant", "vision", "group:students", "editor")
    assert login(gus).get("/api/projects").json() == [
        {"name": "default", "role": "viewer"},
        {"name": "vision", "role": "editor"},
    ]
    assert login(gus).get(f"/api/executions/{vision_run.pk}").status_code == 200


def test_a_superuser_is_a_maintainer_of_every_project(vision_run):
    root = User.objects.create_superuser("root", password="pw-root-123")
    assert {"name": "vision", "role": "maintainer"} in login(root).get("/api/projects").json()


# --- tokens: one project, read-only -------------------------------------------------------------


def bearer(user, **limits):
    token, key = ApiToken.issue(user)
    ApiToken.objects.filter(pk=token.pk).update(**limits)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_a_token_limited_to_one_project_sees_nothing_of_the_others(team, vision, vision_run):
    default_run = run_in(Project.default(), folder="09-00-00__06-12-2026")
    headers = bearer(team["maya"], project=vision)
    client = Client()
    assert client.get("/api/projects", **headers).json() == [{"name": "vision", "role": "maintainer"}]
    assert client.get(f"/api/executions/{default_run.pk}", **headers).status_code == 404
    assert client.get(f"/api/executions/{vision_run.pk}", **headers).status_code == 200


def test_a_read_only_token_reads_but_cannot_act_whatever_its_users_role(team, vision_run):
    headers = bearer(team["maya"], read_only=True)
    client = Client()
    assert client.get(f"/api/executions/{vision_run.pk}", **headers).status_code == 200
    answer = client.post(f"/api/executions/{vision_run.pk}/cancel", **headers)
    assert answer.status_code == 403
    assert "read-only" in answer.json()["detail"]
    assert Execution.objects.get(pk=vision_run.pk).status == Status.RUNNING


# --- managing: the command line, audited ----------------------------------------------------------


def test_the_command_creates_grants_lists_and_revokes_and_each_change_is_audited(capsys):
    person("alice")
    Group.objects.create(name="reviewers")
    call_command("project", "create", "vision")
    call_command("project", "grant", "vision", "alice", "editor")
    call_command("project", "grant", "vision", "alice", "maintainer")
    call_command("project", "grant", "vision", "group:reviewers", "viewer")
    capsys.readouterr()
    call_command("project", "list")
    assert capsys.readouterr().out.splitlines() == [
        "default: no members",
        "vision: alice: maintainer, group:reviewers: viewer",
    ]
    call_command("project", "revoke", "vision", "alice")
    assert list(ProjectRole.objects.values_list("role", flat=True)) == ["viewer"]
    actions = list(Entry.objects.order_by("pk").values_list("action", "details__role"))
    assert actions == [
        ("project_create", None),
        ("role_grant", "editor"),
        ("role_grant", "maintainer"),
        ("role_grant", "viewer"),
        ("role_revoke", "maintainer"),
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("create", "Vision Team"), "lower-case letters"),
        (("create", "default"), "already exists"),
        (("grant", "nowhere", "alice", "viewer"), "no project named 'nowhere'"),
        (("grant", "default", "nobody", "viewer"), "no user named 'nobody'"),
        (("grant", "default", "group:ghosts", "viewer"), "no group named 'ghosts'"),
        (("revoke", "default", "alice"), "alice has no role in project 'default'"),
    ],
)
def test_the_command_says_what_was_wrong(arguments, message):
    person("alice")
    with pytest.raises(CommandError, match=message):
        call_command("project", *arguments)


def test_denied_attempts_on_a_run_that_exists_are_audited(team, vision_run):
    assert login(team["otto"]).get(f"/api/executions/{vision_run.pk}").status_code == 404
    assert login(team["vera"]).post(f"/api/executions/{vision_run.pk}/cancel").status_code == 403
    assert login(team["otto"]).get("/api/executions/999999").status_code == 404  # nothing there: nothing to audit
    denied = Entry.objects.filter(action="denied").order_by("pk")
    assert [(entry.actor_name, entry.execution_id, entry.details) for entry in denied] == [
        ("otto", vision_run.pk, {"tried": "read", "hidden": True}),
        ("vera", vision_run.pk, {"tried": "launch", "hidden": False}),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_default_project_is_there_again_after_a_flush_so_a_teammate_still_sees_the_launch_button():
    """The pages read ``default`` by name, not making it again on each request: a flush (which empties every
    table, as between transactional tests) must leave it there for them."""
    call_command("flush", interactive=False, verbosity=0)
    assert list(Project.objects.values_list("name", flat=True)) == ["default"]
    teammate = User.objects.create_user("casey", password="pw")
    teammate.user_permissions.add(Permission.objects.get(codename="add_execution"))
    client = Client()
    client.force_login(teammate)
    assert 'href="/runs/new/"' in client.get("/").content.decode()
