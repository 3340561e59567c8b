"""Pushing into a project (issues #26 and #28): pushed folders and live-streamed runs land in the project the
caller names (``?project=``, ``--project``), else the token's project when it is limited to one, else default;
the caller needs the editor role there. A project they may not write is refused, and nothing is written."""

import io
import json
import os

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

import gymnos_track
from experiments.models import ApiToken, Execution, Project
from gymnos_track.push import push
from tests.folders import login

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team():
    """``bea`` an editor of vision and a viewer of nlp, ``vic`` a viewer of vision, ``ned`` a member of nlp only."""
    for name in ("vision", "nlp", "secret"):
        Project.objects.create(name=name)
    actors = {name: User.objects.create_user(name, password=f"pw-{name}-123") for name in ("bea", "vic", "ned")}
    for name, project, role in (
        ("bea", "vision", "editor"),
        ("bea", "nlp", "viewer"),
        ("vic", "vision", "viewer"),
        ("ned", "nlp", "maintainer"),
    ):
        call_command("project", "grant", project, name, role)
    return actors


def token(user, **limits):
    made, key = ApiToken.issue(user, rotate=True, scope=ApiToken.Scope.PUSH)
    ApiToken.objects.filter(pk=made.pk).update(**limits)
    return key


def script_run(local, index=0):
    with gymnos_track.start(experiment="pushed", config={"run": index}, root=local) as run:
        for epoch in range(3):
            run.log({"loss": 1.0 / (epoch + 1)})
    return run.path


def files_under(path):
    return sorted(os.path.relpath(os.path.join(d, n), path) for d, _, names in os.walk(path) for n in names)


def test_a_push_into_a_project_lands_in_its_folder_and_is_seen_by_its_members_only(live_server, root, team, tmp_path):
    run = script_run(tmp_path / "local")
    report = push(tmp_path / "local", live_server.url, token(team["bea"]), progress=None, project="vision")
    assert report.line() == "pushed 1, already there 0, still running 0, refused 0"
    here = root / "projects" / "vision" / "pushed" / "executions" / run.name
    assert files_under(here) == files_under(run)
    assert not (root / "pushed").exists()  # nothing at default's place
    execution = Execution.objects.select_related("experiment__project").get()
    assert (execution.experiment.project.name, execution.status) == ("vision", Execution.Status.SUCCEEDED)
    assert len(execution.history("loss")) == 3
    assert login(team["vic"]).get(f"/api/executions/{execution.pk}").status_code == 200
    assert login(team["ned"]).get(f"/api/executions/{execution.pk}").status_code == 404
    again = io.StringIO()  # the command line, a second time: the same run, already there
    call_command(
        "push",
        str(tmp_path / "local"),
        server=live_server.url,
        token=token(team["bea"]),
        project="vision",
        stdout=again,
    )
    assert again.getvalue().splitlines()[-1] == "pushed 0, already there 1, still running 0, refused 0"
    assert Execution.objects.count() == 1


@pytest.mark.parametrize(
    ("project", "said"),
    [
        ("nlp", "You need the editor role in project nlp"),  # bea reads nlp, may not write it
        ("secret", "no project named 'secret' that you may see"),  # exists, but not for bea
        ("nosuch", "no project named 'nosuch' that you may see"),
        ("../../elsewhere", "no project named '../../elsewhere' that you may see"),
    ],
)
def test_a_push_into_a_project_one_may_not_write_is_refused_and_writes_nothing(
    live_server, root, team, tmp_path, project, said
):
    run = script_run(tmp_path / "local")
    report = push(tmp_path / "local", live_server.url, token(team["bea"]), progress=None, project=project)
    assert report.refused.keys() == {f"pushed/{run.name}"}
    assert said in report.refused[f"pushed/{run.name}"]
    assert files_under(root) == []
    assert not (tmp_path / "elsewhere").exists()
    assert not Execution.objects.exists()


def test_a_token_limited_to_one_project_pushes_into_it_unless_told_otherwise(live_server, root, team, tmp_path):
    run = script_run(tmp_path / "local")
    limited = token(team["bea"], project=Project.objects.get(name="vision"))
    assert push(tmp_path / "local", live_server.url, limited, progress=None).line().startswith("pushed 1,")
    assert (root / "projects" / "vision" / "pushed" / "executions" / run.name).is_dir()
    assert Execution.objects.get().experiment.project.name == "vision"
    elsewhere = push(tmp_path / "local", live_server.url, limited, progress=None, project="default")
    assert "no project named 'default' that you may see" in elsewhere.refused[f"pushed/{run.name}"]


def test_epochs_streamed_into_a_project_and_its_folder_pushed_there_make_one_run(
    live_server, root, team, tmp_path, client
):
    key = token(team["bea"])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    run = script_run(tmp_path / "local")
    body = {"experiment": "pushed", "folder": run.name, "epochs": [{"epoch": 0, "metrics": {"loss": 0.5}}]}
    refused = client.post("/api/push/live?project=nlp", json.dumps(body), content_type="application/json", **headers)
    assert refused.status_code == 403
    assert not Execution.objects.exists()
    answer = client.post("/api/push/live?project=vision", json.dumps(body), content_type="application/json", **headers)
    assert answer.status_code == 200, answer.content
    streamed = Execution.objects.select_related("experiment__project").get(pk=answer.json()["execution"])
    assert streamed.experiment.project.name == "vision"
    assert (
        push(tmp_path / "local", live_server.url, key, progress=None, project="vision").line().startswith("pushed 1,")
    )
    assert list(Execution.objects.values_list("pk", "status")) == [(streamed.pk, Execution.Status.SUCCEEDED)]


def test_a_push_into_a_project_cut_off_and_abandoned_is_reaped_from_its_folder(live_server, root, team, tmp_path):
    from experiments.index.staging import reap_abandoned

    run = script_run(tmp_path / "local")
    (run / "weights.bin").write_bytes(os.urandom(100_000))  # too big to go with the list: staged in pieces
    key = token(team["bea"])
    cut = push(run, live_server.url, key, chunk_bytes=10_000, stop_after_chunks=2, progress=None, project="vision")
    assert cut.stopped == [f"pushed/{run.name}"]
    executions = root / "projects" / "vision" / "pushed" / "executions"
    assert sorted(os.listdir(executions)) == [f".push-{run.name}", f".push-{run.name}.json"]
    assert reap_abandoned(root, max_age_seconds=0) == 1
    assert os.listdir(executions) == []


def test_a_script_streaming_into_a_project_then_pushed_there_is_one_run_of_it(live_server, root, team, tmp_path):
    key = token(team["bea"])
    local = tmp_path / "local"
    with gymnos_track.start(
        experiment="pushed", root=local, server=live_server.url, token=key, project="vision"
    ) as run:
        for epoch in range(3):
            run.log({"loss": 1.0 / (epoch + 1)})
    streamed = Execution.objects.select_related("experiment__project").get()
    assert (streamed.experiment.project.name, streamed.epochs) == ("vision", 3)
    assert push(local, live_server.url, key, progress=None, project="vision").line().startswith("pushed 1,")
    assert list(Execution.objects.values_list("pk", "status")) == [(streamed.pk, Execution.Status.SUCCEEDED)]
