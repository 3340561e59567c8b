"""Pushes that go wrong on the server's side: a server killed half-way (SIGKILL) and started again, and a push
begun and never finished, whose staging the reaper removes after GYMNOS_PUSH_STAGING_HOURS."""

import os
import threading
import time

import pytest

import gymnos_track
import gymnos_track.live
from experiments.jobs.reaper import reap
from experiments.models import ApiToken, Execution
from gymnos_track.push import push
from tests.web_process import WebProcess

pytestmark = pytest.mark.django_db(transaction=True)


def _token(user):
    key = ApiToken.issue(user, rotate=True)[1]
    assert key is not None
    return key


def _run(local, artifact_bytes, experiment="pushed"):
    payload = local.parent / "weights.bin"
    payload.write_bytes(os.urandom(artifact_bytes))
    with gymnos_track.start(experiment=experiment, config={"lr": 0.1}, root=local) as run:
        for epoch in range(3):
            run.log({"loss": 1.0 / (epoch + 1)})
        run.log_artifact(payload)
    return run.path


def _age(path, hours):
    """Make every entry at ``path`` (a tree or a file) look last written ``hours`` ago."""
    then = time.time() - hours * 3600
    entries = [path] if path.is_file() else [path, *path.rglob("*")]
    for entry in entries:
        os.utime(entry, (then, then), follow_symlinks=False)


@pytest.mark.usefixtures("real_queues")
def test_a_push_abandoned_half_way_is_removed_by_the_reaper_once_old_and_not_before(
    live_server, root, owner, tmp_path, settings
):
    settings.GYMNOS_PUSH_STAGING_HOURS = 24
    token = _token(owner)
    old = _run(tmp_path / "a", 100_000)
    recent = _run(tmp_path / "b", 100_000, experiment="other")
    for run in (old, recent):
        cut = push(run, live_server.url, token, chunk_bytes=10_000, stop_after_chunks=3, progress=None)
        assert cut.stopped
    executions, others = root / "pushed" / "executions", root / "other" / "executions"
    secret = tmp_path / "secret.txt"
    secret.write_text("not the server's to delete")
    os.symlink(secret, executions / f".push-{old.name}" / "link")  # a link in staging: removed as a link
    _age(executions / f".push-{old.name}", 25)
    _age(executions / f".push-{old.name}.json", 25)
    _age(others / f".push-{recent.name}.json", 25)  # its staged pieces are recent: still under way

    assert reap()["remove abandoned pushes' staging"] == 1
    assert os.listdir(executions) == []
    assert sorted(os.listdir(others)) == [f".push-{recent.name}", f".push-{recent.name}.json"]
    assert secret.read_text() == "not the server's to delete"
    assert reap()["remove abandoned pushes' staging"] == 0

    again = push(old, live_server.url, token, progress=None)  # the client still has it: pushed from the start
    assert again.line() == "pushed 1, already there 0, still running 0, refused 0"
    assert push(recent, live_server.url, token, progress=None).pushed
    assert (os.listdir(executions), os.listdir(others)) == ([old.name], [recent.name])
    assert Execution.objects.filter(status=Execution.Status.SUCCEEDED).count() == 2


@pytest.fixture
def web(root, tmp_path):
    """gunicorn serving the test database and ``root``; stopped (or killed) at the end."""
    server = WebProcess(root, tmp_path / "cache", tmp_path / "web.log")
    yield server
    server.stop()


def _files(folder):
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_a_push_cut_off_by_the_server_being_killed_resumes_once_it_is_back_and_loses_and_duplicates_nothing(
    web, root, owner, tmp_path
):
    local = tmp_path / "local"
    run = _run(local, 3_000_000)  # 300 pieces of 10 kB: the kill lands half-way
    token = _token(owner)
    web.start()
    outcome: dict[str, object] = {}

    def pushing():
        try:
            outcome["report"] = push(run, web.url, token, chunk_bytes=10_000, progress=None)
        except OSError as exc:  # the server gone mid-request: the connection refused or reset
            outcome["error"] = exc

    thread = threading.Thread(target=pushing)
    thread.start()
    staged = root / "pushed" / "executions" / f".push-{run.name}" / "artifacts" / "weights.bin"
    deadline = time.monotonic() + 120
    while not (staged.exists() and staged.stat().st_size >= 500_000):
        assert time.monotonic() < deadline, "the push did not get half-way"
        assert thread.is_alive(), outcome
        time.sleep(0.01)
    web.kill()
    thread.join(60)
    assert "error" in outcome, outcome  # cut off half-way, not finished
    held = staged.stat().st_size
    assert 500_000 <= held < 3_000_000
    assert not Execution.objects.exists()

    web.start()
    resumed = push(run, web.url, token, chunk_bytes=10_000, progress=None)
    assert resumed.line() == "pushed 1, already there 0, still running 0, refused 0"
    assert resumed.sent_bytes <= 3_000_000 - held + 10_000  # only what the server did not hold (a piece in flight)
    here = root / "pushed" / "executions" / run.name
    assert _files(here) == _files(run)  # nothing lost, nothing written twice: every byte as the client has it
    assert os.listdir(here.parent) == [run.name]  # no staging left
    execution = Execution.objects.get()
    assert (execution.status, execution.history("loss")) == (Execution.Status.SUCCEEDED, [1.0, 0.5, 1 / 3])

    again = push(run, web.url, token, progress=None)
    assert again.line() == "pushed 0, already there 1, still running 0, refused 0"
    assert Execution.objects.count() == 1


def _wait(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _losses(folder):
    execution = Execution.objects.filter(folder_name=folder).first()
    return execution.history("loss") if execution is not None else None


def test_epochs_streamed_with_a_token_wait_while_the_server_is_down_and_the_push_completes_that_same_run(
    web, root, owner, tmp_path, monkeypatch
):
    monkeypatch.setattr(gymnos_track.live, "RETRY", (0.05, 0.2))
    token = ApiToken.issue(owner, rotate=True, scope=ApiToken.Scope.PUSH)[1]
    assert token is not None
    run = gymnos_track.start(experiment="streamed", root=tmp_path / "local", server=web.url, token=token)
    assert isinstance(run.live, gymnos_track.live.ApiStream)
    started = time.perf_counter()
    run.log({"loss": 0.5, "val_loss": float("nan")})
    run.log({"loss": 0.25})
    assert time.perf_counter() - started < 1  # the server being down costs log nothing
    _wait(lambda: "Connection" in run.live.error)
    assert _losses(run.path.name) is None

    web.start()
    run.log({"loss": 0.125})
    _wait(lambda: _losses(run.path.name) == [0.5, 0.25, 0.125])  # caught up: what waited, then the new one
    streamed = Execution.objects.get(folder_name=run.path.name)
    assert (streamed.status, streamed.launched_by, streamed.history("val_loss")) == ("running", owner, [None])
    _wait(lambda: run.live.sent == 3)
    assert run.live.requests < 3  # batched: the two that waited went in one request
    run.finish()
    assert not run.live.thread.is_alive()

    report = push(tmp_path / "local", web.url, token, progress=None)
    assert report.line() == "pushed 1, already there 0, still running 0, refused 0"
    pushed = Execution.objects.get()  # the same row, now from the folder
    assert (pushed.pk, pushed.status) == (streamed.pk, Execution.Status.SUCCEEDED)
    assert (pushed.history("loss"), pushed.history("val_loss")) == ([0.5, 0.25, 0.125], [None])
