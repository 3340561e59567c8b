"""Resume by hand (#23): a cancelled or failed run goes on from its kept state, from its page or the API."""

import json
from pathlib import Path

import django_rq
import pytest
from rq.job import Job

from audit.models import Entry
from experiments.jobs import launching
from experiments.models import Execution, Experiment
from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.resume import STATE_FOLDER, has_kept_state
from tests.helpers import tiny, token_for
from tests.test_resume import DiesAt, _row, _slow, workers  # noqa: F401 - workers: the fixture
from tests.workers import wait_for

pytestmark = [pytest.mark.training, pytest.mark.django_db(transaction=True)]


def _post(client, pk, token, body=None):
    data = json.dumps(body) if body is not None else ""
    return client.post(
        f"/api/executions/{pk}/resume", data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def test_a_cancelled_run_resumed_from_the_api_goes_on_with_each_epoch_once(workers, client, launcher, capsys):  # noqa: F811
    token = token_for(launcher, capsys)
    workers(GYMNOS_TEST_EPOCH_PAUSE="0.5").wait_ready()
    execution = launching.launch(_slow(epochs=6))
    wait_for(lambda: _row(execution.pk).epochs >= 2, timeout=90, message="two epochs trained")
    cancelled = client.post(f"/api/executions/{execution.pk}/cancel", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert cancelled.json()["status"] == "cancelled"
    folder = Path(_row(execution.pk).folder_path)
    wait_for(lambda: not launching.django_rq.get_queue("default").started_job_registry.get_job_ids(), timeout=30)
    assert has_kept_state(folder)  # the cancel killed its work horse: the state it kept stays
    kept_epoch = json.loads((folder / STATE_FOLDER / "state.json").read_text())["epoch"]

    answer = _post(client, execution.pk, token, {"epochs": 8})
    assert answer.status_code == 200, answer.content
    assert (answer.json()["status"], answer.json()["attempts"]) == ("queued", 1)
    wait_for(lambda: _row(execution.pk).status in {"succeeded", "failed"}, timeout=120, message="run ended")

    run = _row(execution.pk)
    assert run.status == "succeeded", run.error
    assert run.folder_path == str(folder)
    assert (run.epochs, run.epochs_total) == (8, 8)
    assert len(run.history("loss")) == 8
    assert len(json.loads((folder / "metrics.json").read_text())["metrics"]["val_loss"]) == 8
    assert f"resumed at epoch {kept_epoch} (attempt 2)" in (folder / "execution.log").read_text()
    entry = Entry.objects.get(action=Entry.Action.RESUME)
    assert (entry.execution_id, entry.actor, entry.details["epochs"]) == (execution.pk, launcher, 8)
    again = _post(client, execution.pk, token)
    assert again.status_code == 409
    assert "succeeded" in again.json()["detail"]


def _ended_row(tmp_path: Path, status: str, folder: Path | None = None, epochs: int = 0) -> Execution:
    experiment, _ = Experiment.objects.get_or_create(name="boston_housing")
    folder = folder or tmp_path / f"run-{status}"
    folder.mkdir(parents=True, exist_ok=True)
    return Execution.objects.create(
        experiment=experiment,
        folder_name=folder.name,
        folder_path=str(folder),
        status=status,
        job_id=f"execution-{status}",
        queue="default",
        config=tiny(epochs=4),
        epochs_total=4,
        epochs=epochs,
    )


@pytest.fixture
def kept(tmp_path):
    """A run folder that keeps a state at epoch 2 (its third epoch failed)."""
    first = run_experiment(load_config(tiny(epochs=4)), tmp_path / "trainings", tmp_path / "cache", [DiesAt(2)])
    assert first.path is not None
    return first.path


@pytest.mark.usefixtures("real_queues")
def test_a_run_that_cannot_be_resumed_answers_409_saying_why(tmp_path, client, launcher, viewer, capsys, kept):
    token = token_for(launcher, capsys)
    for status, reason in [
        ("running", "is running; only a cancelled or failed run can be resumed"),
        ("queued", "is queued; only a cancelled or failed run can be resumed"),
        ("succeeded", "it trained to its end"),
        ("failed", "keeps no state to go on from"),
    ]:
        answer = _post(client, _ended_row(tmp_path, status).pk, token)
        assert answer.status_code == 409, status
        assert reason in answer.json()["detail"]
    resumable = _ended_row(tmp_path, "failed", folder=kept, epochs=3)
    assert _post(client, resumable.pk, token_for(viewer, capsys)).status_code == 403
    too_few = _post(client, resumable.pk, token, {"epochs": 3})
    assert too_few.status_code == 400
    assert too_few.json()["errors"][0]["path"] == "epochs"
    assert "more than the 3 it reached" in too_few.json()["errors"][0]["message"]
    assert _row(resumable.pk).status == "failed"  # nothing changed
    assert not Entry.objects.filter(action=Entry.Action.RESUME).exists()


@pytest.mark.usefixtures("real_queues")
def test_the_resume_button_shows_the_attempt_and_queues_the_run(tmp_path, owner_client, teammate_client, kept):
    run = _ended_row(tmp_path, "cancelled", folder=kept, epochs=3)
    page = owner_client.get(f"/executions/{run.pk}/", follow=True).content.decode()
    assert "Resume (attempt 2)" in page
    assert "Resume (attempt" not in teammate_client.get(f"/executions/{run.pk}/", follow=True).content.decode()
    owner_client.post(f"/executions/{run.pk}/resume/", {"epochs": ""})
    run.refresh_from_db()
    assert (run.status, run.attempts, run.job_id) == ("queued", 1, f"execution-{run.pk}-attempt-2")
    assert Job.exists(run.job_id, connection=django_rq.get_connection("default"))
    page = owner_client.get(f"/executions/{run.pk}/", follow=True).content.decode()
    assert "attempt 2" in page
    assert "Resume (attempt" not in page  # queued: nothing to resume
    assert Entry.objects.filter(action=Entry.Action.RESUME, execution=run).count() == 1
