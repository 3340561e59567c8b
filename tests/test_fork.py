"""Fork a run from a checkpoint or its last state (#23): ``POST /api/executions/{id}/fork``, lineage in the API and
the query language. Real training (tiny configs), a real Redis queue, the real work horse's code in this process."""

import copy
import json
from pathlib import Path

import h5py
import pytest
from django.conf import settings

from audit.models import Entry
from experiments.index.sync import sync_trainings
from experiments.jobs import horse, launching
from experiments.models import Execution, Experiment
from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.fork import optimizer_dropped
from experiments.search.selection import Filters, select
from tests.helpers import tiny, token_for
from tests.test_fork_engine import DiesAt

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("real_queues")]

LR = "model.compilation.optimizer.learning_rate"


def parent_config(epochs=8):
    """A parent that learns fast (a high rate), saving a checkpoint every epoch."""
    config = tiny(epochs=epochs, callbacks=[{"type": "model_checkpoint", "filepath": "weights.{epoch:02d}.h5"}])
    config["model"]["compilation"]["optimizer"] = {"type": "adam", "learning_rate": 0.05}
    return config


@pytest.fixture
def folders(settings, tmp_path):
    settings.GYMNOS_TRAININGS_ROOT = tmp_path / "trainings"
    settings.GYMNOS_CACHE_DIR = tmp_path / "cache"


def trained(config):
    execution = launching.launch(config, trusted=True, check=lambda checked: [])
    assert horse.run(execution.pk) == "succeeded"
    return Execution.objects.get(pk=execution.pk)


@pytest.fixture
def parent(folders):
    return trained(parent_config())


def fork(client, token, parent_id, body):
    return client.post(
        f"/api/executions/{parent_id}/fork", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def optimizer_state(folder):
    """The learning rate and step count a run's model.h5 saved with its optimizer."""
    with h5py.File(folder / "model.h5", "r") as handle:
        group = handle["optimizer_weights"]
        names = [name.decode() if isinstance(name, bytes) else name for name in group.attrs["weight_names"]]
        values = {name.rsplit("/", 1)[-1].split(":")[0]: group[name][()] for name in names}
    return float(values["learning_rate"]), int(values["iteration"] if "iteration" in values else values["iterations"])


@pytest.mark.training
def test_a_fork_from_a_checkpoint_with_a_lower_rate_starts_near_the_parents_loss_there(
    client, launcher, capsys, parent
):
    response = fork(client, token_for(launcher, capsys), parent.pk, {"from": 6, "changes": {LR: 0.01}})
    assert response.status_code == 201, response.content
    answer = response.json()
    assert (answer["parent"], answer["forked_at_epoch"], answer["status"]) == (parent.pk, 6, "queued")
    assert horse.run(answer["id"]) == "succeeded"
    child = Execution.objects.get(pk=answer["id"])
    assert child.experiment == parent.experiment
    assert child.folder_path != parent.folder_path

    fresh = trained(copy.deepcopy(child.config))  # the same config from scratch
    at_checkpoint = parent.history("loss")[5]
    first, fresh_first = child.history("loss")[0], fresh.history("loss")[0]
    assert len(child.history("loss")) == 8  # its own epochs (the parent's config's), from 0
    # Near the parent's loss at epoch 6, far below where the same config starts from scratch.
    assert abs(first - at_checkpoint) < 0.1 * (fresh_first - at_checkpoint), (first, at_checkpoint, fresh_first)
    # The optimizer's state came with the weights (its step count goes on), at the new rate.
    parent_steps = optimizer_state(Path(parent.folder_path))[1]
    rate, steps = optimizer_state(Path(child.folder_path))
    assert rate == pytest.approx(0.01)
    assert steps > parent_steps * 6 / 8  # the checkpoint's steps and the child's own
    log = (Path(child.folder_path) / "execution.log").read_text()
    assert "at its epoch 6; the optimizer's state kept" in log
    entry = Entry.objects.get(execution=child)
    assert (entry.action, entry.details["fork_of"], entry.actor) == ("launch", parent.pk, launcher)


@pytest.mark.training
def test_a_fork_from_the_last_state_of_a_finished_run_starts_from_its_model(client, launcher, capsys, parent):
    response = fork(client, token_for(launcher, capsys), parent.pk, {"from": "last", "changes": {"training.epochs": 1}})
    assert response.status_code == 201, response.content
    assert response.json()["forked_at_epoch"] == 8
    assert horse.run(response.json()["id"]) == "succeeded"
    child = Execution.objects.get(pk=response.json()["id"])
    fresh_first = trained(copy.deepcopy(child.config)).history("loss")[0]
    assert abs(child.history("loss")[0] - parent.history("loss")[-1]) < 0.1 * fresh_first


def test_bad_fork_requests_name_every_problem_at_once(client, launcher, capsys, folders):
    parent = trained(parent_config(epochs=3))
    token = token_for(launcher, capsys)
    body = {"from": 7, "changes": {"training.epochz": 3, LR: -1, "model.network[9].units": 4, "a..b": 1}}
    response = fork(client, token, parent.pk, body)
    assert response.status_code == 400
    errors = {error["path"]: error["message"] for error in response.json()["errors"]}
    assert "no checkpoint at epoch 7; its checkpoints' epochs: 1, 2, 3" in errors["from"]
    assert "unknown key; did you mean 'epochs'?" in errors["training.epochz"]
    assert "must be a number above 0" in errors[LR]
    assert "no item [9]" in errors["model.network[9].units"]
    assert "is not a config path" in errors["a..b"]
    assert Execution.objects.count() == 1  # nothing created

    assert fork(client, token, parent.pk, {"changes": {}}).json()["errors"][0]["path"] == "from"
    assert fork(client, token, parent.pk, {"from": "first"}).json()["errors"][0]["path"] == "from"


def test_forking_needs_the_launch_permission(client, viewer, capsys, folders):
    parent = trained(parent_config(epochs=1))
    assert fork(client, token_for(viewer, capsys), parent.pk, {"from": 1}).status_code == 403
    assert fork(client, "", parent.pk, {"from": 1}).status_code in (401, 403)
    assert Execution.objects.count() == 1


def test_lineage_is_in_the_api_and_the_query_language(client, launcher):
    experiment = Experiment.objects.create(name="boston_housing")
    parent = Execution.objects.create(experiment=experiment, folder_name="p", status="succeeded")
    children = [
        Execution.objects.create(experiment=experiment, folder_name=f"c{n}", parent=parent, forked_at_epoch=n)
        for n in (3, 5)
    ]
    Execution.objects.create(experiment=experiment, folder_name="other", status="succeeded")
    client.force_login(launcher)
    answer = client.get(f"/api/executions/{children[1].pk}").json()
    assert (answer["parent"], answer["forked_at_epoch"]) == (parent.pk, 5)
    assert client.get(f"/api/executions/{parent.pk}").json()["parent"] is None
    for probe in (True, False):
        chosen = select(experiment, Filters(q=f"parent = {parent.pk}"), probe=probe)
        assert not chosen.error
        assert sorted(str(name) for name in chosen.runs.values_list("folder_name", flat=True)) == ["c3", "c5"]
    found = client.get("/api/executions", {"q": f"parent = {parent.pk}", "experiment": "boston_housing"})
    assert found.status_code == 200, found.content
    assert sorted(item["id"] for item in found.json()["items"]) == sorted(child.pk for child in children)


def test_which_changes_drop_the_optimizers_state():
    base = tiny()
    rate = copy.deepcopy(base)
    rate["model"]["compilation"]["optimizer"] = {"type": "adam", "learning_rate": 0.01}
    assert optimizer_dropped(base, rate) is None  # "adam" and {"type": "adam"}: the same type
    epochs = copy.deepcopy(base)
    epochs["training"]["epochs"] = 50
    assert optimizer_dropped(base, epochs) is None
    wider = copy.deepcopy(base)
    wider["model"]["network"][0]["units"] = 16
    assert "network changed (model.network)" in str(optimizer_dropped(base, wider))
    sgd = copy.deepcopy(base)
    sgd["model"]["compilation"]["optimizer"] = "SGD"
    assert "optimizer type changed (adam -> sgd)" in str(optimizer_dropped(base, sgd))


@pytest.mark.training
def test_a_fork_from_the_last_state_of_a_failed_run_starts_from_the_state_it_kept(client, launcher, capsys, folders):
    root = Path(settings.GYMNOS_TRAININGS_ROOT)
    died = run_experiment(load_config(parent_config()), root, root.parent / "cache", callbacks=[DiesAt(3)])
    assert not died.succeeded
    sync_trainings(root)
    parent = Execution.objects.get(folder_path=str(died.path))
    response = fork(client, token_for(launcher, capsys), parent.pk, {"from": "last", "changes": {"training.epochs": 1}})
    assert response.status_code == 201, response.content
    assert response.json()["forked_at_epoch"] == 4  # the epochs its kept state was trained for
    assert horse.run(response.json()["id"]) == "succeeded"
    child = Execution.objects.get(pk=response.json()["id"])
    log = (Path(child.folder_path) / "execution.log").read_text()
    assert ".resume/epoch-4.weights.safetensors at its epoch 4" in log


@pytest.mark.training
def test_the_run_form_forks_when_it_was_opened_from_a_checkpoint(owner_client, owner, teammate_client, parent):
    url = f"/runs/new/?from={parent.pk}&fork=2"
    page = owner_client.get(url)
    assert "its checkpoint at epoch 2" in page.content.decode()
    form = {"config": json.dumps(parent.config), "from": parent.pk, "fork": "2", "epochs": "1"}
    assert teammate_client.post("/runs/new/", form).status_code == 403  # may read, may not launch
    assert Execution.objects.count() == 1
    answer = owner_client.post("/runs/new/", form)
    assert answer.status_code == 302
    child = Execution.objects.get(parent=parent)
    assert (child.forked_at_epoch, child.epochs_total, child.launched_by) == (2, 1, owner)
    assert Entry.objects.get(execution=child).details["fork_of"] == parent.pk

    wrong = owner_client.post("/runs/new/", {**form, "fork": "99"})
    assert wrong.status_code == 200
    assert "no checkpoint at epoch 99; its checkpoints&#x27; epochs: 1, 2, 3, 4, 5, 6, 7, 8" in wrong.content.decode()
    assert Execution.objects.filter(parent=parent).count() == 1


def test_the_compare_data_says_where_a_fork_continues_its_parent(client, launcher):
    experiment = Experiment.objects.create(name="boston_housing")
    parent = Execution.objects.create(experiment=experiment, folder_name="p", status="succeeded")
    child = Execution.objects.create(experiment=experiment, folder_name="c", parent=parent, forked_at_epoch=4)
    client.force_login(launcher)
    runs = client.get("/compare/data.json", {"runs": f"{parent.pk},{child.pk}"}).json()["runs"]
    lineage = {run["id"]: (run["parent"], run["forked_at_epoch"]) for run in runs}
    assert lineage == {parent.pk: (None, None), child.pk: (parent.pk, 4)}
    page = client.get(f"/executions/{child.pk}/", follow=True).content.decode()
    assert "at its epoch 4" in page
    assert 'href="/experiments/boston_housing/executions/p/"' in page
    assert "c</a>" in client.get("/experiments/boston_housing/executions/p/").content.decode()


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([], "from"),
        ({"from": None}, "from"),
        ({"from": 2.5}, "from"),
        ({"from": True}, "from"),
        ({"from": [1]}, "from"),
        ({"from": 1, "changes": [1, 2]}, "changes"),
        ({"from": 1, "changes": {f"training.k{n}": n for n in range(101)}}, "changes"),
        ({"from": 1, "changes": {"x" * 201: 1}}, "x" * 200),
        ({"from": 1, "changes": {"[0]": 1}}, "[0]"),
        ({"from": 1, "changes": {"training.epochs.deeper": 1}}, "training.epochs.deeper"),
        ({"from": 1, "changes": {"model.network.units": 1}}, "model.network.units"),
        ({"from": 1, "changes": {"a" + ".a" * 99: 1}}, "a" + ".a" * 99),
    ],
)
def test_hostile_fork_requests_are_400_naming_the_field(client, launcher, body, path, db):
    experiment = Experiment.objects.create(name="boston_housing")
    parent = Execution.objects.create(experiment=experiment, folder_name="p", status="succeeded", config=tiny())
    client.force_login(launcher)
    response = client.post(f"/api/executions/{parent.pk}/fork", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert path in [error["path"] for error in response.json()["errors"]]
    assert Execution.objects.count() == 1
