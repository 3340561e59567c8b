"""Pushing run folders to a real server (the live server): twice, cut off and resumed, hostile, and who may;
and epochs streamed live while the server is down, then up."""

import base64
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from django.core.management import call_command

import gymnos_track
import gymnos_track.live
from experiments.models import ApiToken, Execution, Experiment, PublishToken
from gymnos_track.push import PushError, push
from tests.helpers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def _token(user, scope=ApiToken.Scope.ALL):
    return ApiToken.issue(user, rotate=True, scope=scope)[1]


def _script_runs(local, count=2, artifact_bytes=10_000):
    """``count`` finished script runs under ``local``, each with an artifact of ``artifact_bytes``."""
    payload = local.parent / "weights.bin"
    payload.write_bytes(os.urandom(artifact_bytes))
    paths = []
    for index in range(count):
        with gymnos_track.start(experiment="pushed", config={"run": index}, root=local) as run:
            for epoch in range(3):
                run.log({"loss": 1.0 / (epoch + 1 + index)})
            run.log_artifact(payload)
        paths.append(run.path)
    return paths


def _held(root):
    """Every file under ``root``'s run folders (relative path -> bytes), staging included."""
    return {
        os.path.relpath(os.path.join(folder, name), root): open(os.path.join(folder, name), "rb").read()
        for folder, _, names in os.walk(root)
        for name in names
    }


def test_pushing_twice_makes_each_run_once(live_server, root, owner, tmp_path):
    local = tmp_path / "local"
    runs = _script_runs(local)
    (runs[0] / ".metrics.json.123.tmp").write_text("{")  # what a script killed while writing leaves: not the run's
    token = _token(owner, ApiToken.Scope.PUSH)
    first = push(local, live_server.url, token, progress=None)
    assert first.line() == "pushed 2, already there 0, still running 0, refused 0"
    assert Execution.objects.filter(experiment__name="pushed").count() == 2
    for path in runs:
        execution = Execution.objects.get(folder_name=path.name)
        assert execution.status == Execution.Status.SUCCEEDED
        assert len(execution.history("loss")) == 3
        here = root / "pushed" / "executions" / path.name
        assert (here / "artifacts" / "weights.bin").read_bytes() == (path / "artifacts" / "weights.bin").read_bytes()
        assert not (here / ".metrics.json.123.tmp").exists()
    held = _held(root)

    out = io.StringIO()
    call_command("push", str(local), server=live_server.url, token=token, stdout=out)
    assert out.getvalue().splitlines()[-1] == "pushed 0, already there 2, still running 0, refused 0"
    assert Execution.objects.count() == 2
    assert _held(root) == held


def test_streamed_and_pushed_runs_land_in_the_default_project_not_a_same_named_experiment_of_another(
    live_server, root, owner, tmp_path, client
):
    from experiments.models import Project

    vision = Experiment.objects.create(project=Project.objects.create(name="vision"), name="pushed")
    token = _token(owner, ApiToken.Scope.PUSH)
    body = {"experiment": "pushed", "folder": "streamed-1", "epochs": [{"epoch": 0, "metrics": {"loss": 0.5}}]}
    answer = client.post(
        "/api/push/live", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert answer.status_code == 200, answer.content
    streamed = Execution.objects.get(pk=answer.json()["execution"])
    assert streamed.experiment.project.name == "default"  # not vision's experiment of that name
    assert not vision.executions.exists()
    local = tmp_path / "local"
    runs = _script_runs(local, count=1)
    report = push(local, live_server.url, token, progress=None)
    assert report.line() == "pushed 1, already there 0, still running 0, refused 0"
    execution = Execution.objects.get(folder_name=runs[0].name)
    assert (execution.experiment.project.name, execution.status) == ("default", Execution.Status.SUCCEEDED)


def test_a_push_cut_off_half_way_completes_when_run_again(live_server, root, owner, tmp_path):
    local = tmp_path / "local"
    (run,) = _script_runs(local, count=1, artifact_bytes=100_000)  # too big to go with the list
    token = _token(owner)
    cut = push(run, live_server.url, token, chunk_bytes=10_000, stop_after_chunks=8, progress=None)
    assert cut.stopped == [f"pushed/{run.name}"]
    assert 40_000 < cut.sent_bytes < 50_000
    assert not (root / "pushed" / "executions" / run.name).exists()
    assert not Execution.objects.exists()

    resumed = push(run, live_server.url, token, chunk_bytes=10_000, progress=None)
    assert resumed.line() == "pushed 1, already there 0, still running 0, refused 0"
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(run) for n in names)
    assert resumed.sent_bytes == total - cut.sent_bytes  # only what was missing
    here = root / "pushed" / "executions" / run.name
    assert _held(here) == _held(run)
    assert [name for name in os.listdir(root / "pushed" / "executions")] == [run.name]  # no staging left
    assert Execution.objects.get().status == Execution.Status.SUCCEEDED


def _raw_begin(server, token, experiment, folder, files, inline=None):
    request = urllib.request.Request(
        f"{server}/api/push/begin",
        data=json.dumps({"experiment": experiment, "folder": folder, "files": files, "inline": inline or {}}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


ZERO = "0" * 64


HOSTILE = [
    ("run", "../../../outside.txt", 1, "'..'"),
    ("run", "callbacks/../../x", 1, "'..'"),
    ("run", "bad\x1bname.log", 1, "control character (U+001B)"),
    ("..", "execution.log", 1, "the run folder name '..'"),
    ("run/../..", "execution.log", 1, "path separator"),
    ("run", ".hidden", 1, "hidden"),
    ("run", "metrics.json", 2 << 20, "metrics.json: 2,097,152 bytes; at most 1,048,576"),
    ("run", "model.h5", 5 << 30, "run/model.h5: 5,368,709,120 bytes; at most"),
]


def test_a_hostile_manifest_is_refused_naming_the_file(live_server, root, owner, settings):
    settings.GYMNOS_MAX_METRICS_MB = 1
    token = _token(owner)
    log = {"path": "execution.log", "size": 1, "sha256": ZERO}
    for folder, path, size, message in HOSTILE:
        status, answer = _raw_begin(
            live_server.url, token, "exp", folder, [log, {"path": path, "size": size, "sha256": ZERO}]
        )
        assert (status, message in answer["detail"]) == (400, True), (path, answer)
    models = [{"path": f"callbacks/w{index}.h5", "size": 4 << 30, "sha256": ZERO} for index in range(4)]
    status, answer = _raw_begin(live_server.url, token, "exp", "run", [log, *models])
    assert (status, answer["detail"]) == (
        400,
        "run: 17,179,869,185 bytes in all; a pushed run holds at most 17,179,869,184",
    )
    request = urllib.request.Request(
        f"{live_server.url}/api/push/sync",
        data=json.dumps({"runs": [{"experiment": "..", "folder": "x"}]}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400
    assert "the experiment name '..'" in json.load(refused.value)["detail"]
    status, answer = _raw_begin(live_server.url, token, "exp", "run", [log], {"execution.log": "\u00fb=="})
    assert (status, answer["detail"]) == (400, "inline: a value is not base64")  # found by tests/test_api_fuzz.py
    big = base64.b64encode(b"x" * (600 << 10)).decode()
    status, answer = _raw_begin(live_server.url, token, "exp", "run", [log], {"execution.log": big})
    assert (status, answer["detail"]) == (
        400,
        "run: more than 524,288 bytes of files sent with the list; send them in pieces",
    )
    assert list(root.iterdir()) == []  # nothing written anywhere


def test_a_small_file_sent_with_the_list_is_kept_only_if_its_hash_matches(live_server, root, owner):
    token = _token(owner)
    log = {"path": "execution.log", "size": 5, "sha256": hashlib.sha256(b"hello").hexdigest()}
    status, answer = _raw_begin(live_server.url, token, "exp", "run", [log], {"execution.log": "aGVsbG8h"})  # hello!
    assert (status, answer["state"], answer["have"]) == (200, "new", {"execution.log": 0})
    status, answer = _raw_begin(live_server.url, token, "exp", "run", [log], {"execution.log": "aGVsbG8="})  # hello
    assert (status, answer["state"], answer["created"]) == (200, "pushed", True)
    assert (root / "exp" / "executions" / "run" / "execution.log").read_bytes() == b"hello"


def test_a_folder_holding_a_symlink_is_refused_naming_it(live_server, root, owner, tmp_path):
    local = tmp_path / "local"
    (run,) = _script_runs(local, count=1)
    os.symlink("/etc/passwd", run / "artifacts" / "passwd")
    report = push(local, live_server.url, _token(owner), progress=None)
    assert report.line().endswith("refused 1")
    (reason,) = report.refused.values()
    assert reason == f"{run.name}/artifacts/passwd: is a symbolic link; a pushed run holds only its own files"
    assert list(root.iterdir()) == []


def test_a_script_pushes_at_its_end_and_a_changed_folder_of_that_name_is_refused(live_server, root, owner, tmp_path):
    local = tmp_path / "local"
    (run,) = _script_runs(local, count=1)
    token = _token(owner)
    assert gymnos_track.push(run, server=live_server.url, token=token, progress=None).pushed
    with open(run / "execution.log", "a") as log:
        log.write("edited\n")
    report = push(run, live_server.url, token, progress=None)
    (reason,) = report.refused.values()
    assert "is already on this server with other files" in reason


def test_a_token_without_the_launch_permission_or_a_wrong_one_pushes_nothing(live_server, root, teammate, tmp_path):
    local = tmp_path / "local"
    _script_runs(local, count=1)
    report = push(local, live_server.url, _token(teammate), progress=None)
    (reason,) = report.refused.values()
    assert "permission" in reason  # 403: answered per folder
    with pytest.raises(PermissionError, match="401"):
        push(local, live_server.url, "not-a-token", progress=None)
    assert list(root.iterdir()) == []


def test_a_push_only_token_reads_nothing_else(live_server, owner):
    request = urllib.request.Request(
        f"{live_server.url}/api/executions/1", headers={"Authorization": f"Bearer {_token(owner, 'push')}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 401


def test_a_run_still_running_is_left_for_later(live_server, root, owner, tmp_path):
    run = gymnos_track.start(experiment="pushed", root=tmp_path / "local")
    run.log({"loss": 1.0})
    report = push(tmp_path / "local", live_server.url, _token(owner), progress=None)
    assert report.line() == "pushed 0, already there 0, still running 1, refused 0"
    run.finish()


def test_a_path_that_is_not_a_folder_is_said(tmp_path):
    with pytest.raises(PushError, match="not a folder"):
        push(tmp_path / "nothing", "http://localhost:1", "t", progress=None)


def test_the_client_pushes_where_django_is_not_installed(live_server, root, owner, tmp_path):
    local = tmp_path / "local"
    _script_runs(local, count=1)
    root.rmdir()  # a fresh server: no run trained yet
    code = "import sys; sys.modules['django'] = None; from gymnos_track.push import main; sys.exit(main())"
    result = subprocess.run(
        [sys.executable, "-c", code, str(local), "--server", live_server.url],
        cwd=ROOT,
        env={**os.environ, "GYMNOS_TOKEN": _token(owner, ApiToken.Scope.PUSH)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "pushed 1, already there 0, still running 0, refused 0"
    assert Execution.objects.get().status == Execution.Status.SUCCEEDED
    assert len(os.listdir(root / "pushed" / "executions")) == 1


def _wait(condition, seconds=15.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_live_epochs_wait_while_the_server_is_down_and_arrive_once_it_is_up(owner, tmp_path, monkeypatch):
    from pytest_django.live_server_helper import LiveServer

    monkeypatch.setattr(gymnos_track.live, "RETRY", (0.05, 0.2))
    experiment = Experiment.objects.create(name="live")
    followed = Execution.objects.create(experiment=experiment, status="queued", epochs_total=3, launched_by=owner)
    token = PublishToken.objects.create(execution=followed, created_by=owner)
    with socket.socket() as probe:  # a port nothing listens on yet
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    run = gymnos_track.start(
        experiment="live", root=tmp_path / "local", live=f"http://localhost:{port}/publish/epoch/end/{token.token}/"
    )
    started = time.perf_counter()
    run.log({"loss": 0.5})
    run.log({"loss": 0.25})
    assert time.perf_counter() - started < 1  # the server being down costs log nothing (no wait on the stream)
    assert run.live is not None
    _wait(lambda: "Connection" in run.live.error)
    assert followed.history("loss") == []

    server = LiveServer(f"localhost:{port}", start=False)
    server.start()
    try:
        run.log({"loss": 0.125})
        _wait(lambda: followed.history("loss") == [0.5, 0.25, 0.125])
        run.finish()
    finally:
        server.stop()
    followed.refresh_from_db()
    assert followed.status == Execution.Status.SUCCEEDED
    assert run.live.sent == 3
    assert not run.live.thread.is_alive()
    assert "Live stream" not in (run.path / "execution.log").read_text()  # nothing left unsent
