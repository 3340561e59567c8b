"""The search index (values by name, run counts, name counts) stays in step with every writer of a run.

Each test writes runs the way Gymnos does (launch, sync of a folder, a RemoteMonitor post, archive,
delete, a real worker training) and then checks what the table and its counts say, against a
count of the rows themselves.
"""

import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q

from experiments.index.sync import sync_trainings
from experiments.jobs import launching
from experiments.models import Execution, Experiment, KeyCount, RunCount, SearchValue, Status
from experiments.search import counts, triggers
from experiments.search.selection import Filters, select
from tests.folders import LONG_METRICS, write_execution
from tests.helpers import seed_config, tiny
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = pytest.mark.django_db


def values(execution):
    return dict(
        (key, number if number is not None else text)
        for key, number, text in SearchValue.objects.filter(execution=execution).values_list("key", "number", "text")
    )


def direct_counts():
    """What the journals must sum to: the runs themselves, grouped."""
    rows = Execution.objects.exclude(status=Status.DELETED).filter(archived=False)
    found: dict[int, dict[str, int]] = {}
    for experiment_id, status, total in rows.values_list("experiment_id", "status").annotate(total=Count("pk")):
        found.setdefault(experiment_id, {})[status] = total
    return found


def direct_keys(experiment):
    found = {}
    shown = SearchValue.objects.filter(experiment=experiment, state=SearchValue.State.SHOWN)
    for key, numeric, total in shown.values_list("key").annotate(
        numeric=Count("pk", filter=Q(number__isnull=False)), total=Count("pk")
    ):
        found[key] = {k: v for k, v in ((True, numeric), (False, total - numeric)) if v}
    return found


def test_a_synced_folder_has_its_params_metrics_and_tags_by_name(root):
    config = seed_config()
    config["experiment"]["tags"] = ["baseline", "seed"]
    write_execution(root, config=config, metrics=LONG_METRICS)
    sync_trainings(root)
    execution = Execution.objects.get()
    found = values(execution)
    assert found["params.training.batch_size"] == 32
    assert found["params.model.network[0].units"] == 512
    assert found["params.model.compilation.optimizer.type"] == "adam"
    assert found["params.dataset.name"] == "boston_housing"
    assert found["metrics.val_loss"] == LONG_METRICS["metrics"]["val_loss"][-1]
    assert found["metrics.best.val_loss"] == min(LONG_METRICS["metrics"]["val_loss"])
    assert found["metrics.test_loss"] == LONG_METRICS["metrics"]["test_loss"][0]
    assert found["tags.baseline"] == "true"
    assert found["tags.seed"] == "true"
    assert "params.model.input_shape" not in found  # a list: not a column value
    assert direct_counts() == counts.by_status()
    assert direct_keys(execution.experiment) == counts.keys(execution.experiment_id)


def test_a_changed_folder_updates_its_values_in_place(root):
    folder = write_execution(root, metrics=LONG_METRICS)
    sync_trainings(root)
    execution = Execution.objects.get()
    before = dict(SearchValue.objects.filter(execution=execution).values_list("key", "pk"))
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["metrics"]["val_loss"][-1] = 1.5
    del metrics["metrics"]["test_loss"]
    (folder / "metrics.json").write_text(json.dumps(metrics))
    sync_trainings(root)
    after = dict(SearchValue.objects.filter(execution=execution).values_list("key", "pk"))
    assert values(execution)["metrics.val_loss"] == 1.5
    assert "metrics.test_loss" not in after
    # The names it kept are the same rows (updated, not rewritten): an epoch costs what changed.
    assert {key: pk for key, pk in before.items() if key in after} == after
    assert direct_keys(execution.experiment) == counts.keys(execution.experiment_id)


def test_archive_restore_and_delete_move_the_counts_and_hide_the_values(root, owner):
    for name in ("06-16-31__08-04-2019", "06-17-31__08-04-2019", "06-18-31__08-04-2019"):
        write_execution(root, name=name)
    sync_trainings(root)
    first, second, third = Execution.objects.order_by("folder_name")
    experiment = first.experiment
    assert counts.total(experiment.pk) == 3
    Execution.objects.filter(pk=first.pk).update(archived=True)
    assert Execution.objects.delete_run(second.pk, by=owner)
    assert counts.total(experiment.pk) == 1
    assert counts.total(experiment.pk, archived=True) == 2
    assert set(SearchValue.objects.filter(execution=first).values_list("state", flat=True)) == {1}
    assert set(SearchValue.objects.filter(execution=second).values_list("state", flat=True)) == {2}
    assert counts.keys(experiment.pk)["params.training.batch_size"] == {True: 1}
    assert Execution.objects.restore(second.pk)
    assert counts.by_status() == direct_counts()
    assert direct_keys(experiment) == counts.keys(experiment.pk)
    chosen = select(experiment, Filters())
    assert sorted(chosen.runs.values_list("pk", flat=True)) == sorted([second.pk, third.pk])
    assert chosen.total() == 2


def test_a_remote_monitor_post_updates_the_metric_values(owner_client):
    owner_client.post("/runs/remote/", {"experiment": "notebook", "title": "Notebook run", "epochs": 3})
    execution = Execution.objects.get(experiment__name="notebook")
    url = f"/publish/epoch/end/{execution.publish_tokens.get().token}/"
    owner_client.post(url, {"data": json.dumps({"epoch": 0, "loss": 4.0, "val_loss": 5.0})})
    owner_client.post(url, {"data": json.dumps({"epoch": 1, "loss": 3.0, "val_loss": 2.0})})
    assert values(execution)["metrics.val_loss"] == 2.0
    assert values(execution)["metrics.best.loss"] == 3.0
    chosen = select(execution.experiment, Filters(q="metrics.val_loss < 2.5"))
    assert list(chosen.runs.values_list("pk", flat=True)) == [execution.pk]
    assert counts.total(execution.experiment_id, "running") == 1


def test_deleting_rows_and_moving_a_run_keep_the_journals_true(root):
    for name in ("06-16-31__08-04-2019", "06-17-31__08-04-2019"):
        write_execution(root, name=name)
    sync_trainings(root)
    other = Experiment.objects.create(name="other")
    moved = Execution.objects.order_by("pk").first()
    assert moved is not None
    Execution.objects.filter(pk=moved.pk).update(experiment=other)
    assert values(moved)
    assert set(SearchValue.objects.filter(execution=moved).values_list("experiment", flat=True)) == {other.pk}
    assert counts.by_status() == direct_counts()
    Execution.objects.filter(experiment__name="boston_housing").delete()
    assert counts.by_status() == direct_counts() == {other.pk: {"succeeded": 1}}
    assert counts.keys(other.pk) == direct_keys(other)
    assert counts.keys(moved.pk + 1000) == {}


def test_compacting_the_journals_keeps_every_sum(root, monkeypatch):
    for index in range(5):
        write_execution(root, name=f"06-16-{index:02d}__08-04-2019")
    sync_trainings(root)
    Execution.objects.filter(folder_name__endswith="01__08-04-2019").update(status="failed")
    experiment = Experiment.objects.get()
    before = (counts.by_status(), counts.keys(experiment.pk))
    monkeypatch.setattr(counts, "COMPACT_AFTER", 0)  # every read compacts
    assert (counts.by_status(), counts.keys(experiment.pk)) == before
    assert RunCount.objects.count() == 2  # one row per (experiment, status, archived) left
    assert KeyCount.objects.count() == len(before[1])
    assert before == (direct_counts(), direct_keys(experiment))


@pytest.mark.django_db(transaction=True)  # as migrate runs: not inside a test's transaction
def test_triggers_dropped_by_a_schema_change_come_back_with_the_values_after_migrate(root):
    write_execution(root)
    sync_trainings(root)
    execution = Execution.objects.get()
    triggers.uninstall(connection)  # what SQLite's table rebuild does to them
    SearchValue.objects.all().delete()
    Execution.objects.filter(pk=execution.pk).update(tags=["lost"])
    call_command("migrate", verbosity=0)
    assert values(execution)["tags.lost"] == "true"
    assert values(execution)["params.training.batch_size"] == 32
    Execution.objects.filter(pk=execution.pk).update(tags=["back"])  # and they run again
    assert "tags.back" in values(execution)
    assert "tags.lost" not in values(execution)
    assert counts.by_status() == direct_counts()


def test_values_that_no_column_can_hold_are_left_out_without_failing_the_write(db):
    experiment = Experiment.objects.create(name="odd")
    execution = Execution.objects.create(
        experiment=experiment,
        params={"long": "x" * 300, "k" * 300: 1, "ok": 1.5, "nested": {"a": 1}, "none": None},
        summary={"loss": {"last": None, "best": 2.0}, "odd": "not a dict"},
        tags=["fine", 3, None, "x" * 300],
        system={"peak_memory_mb": "lots"},
    )
    assert values(execution) == {"params.ok": 1.5, "metrics.best.loss": 2.0, "tags.fine": "true"}


@pytest.mark.training
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_a_worker_trains_is_searchable_by_its_metrics_epoch_by_epoch(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    settings.GYMNOS_TRAININGS_ROOT = tmp_path / "trainings"
    flush()
    worker = WorkerProcess(
        worker_env(tmp_path / "trainings", tmp_path / "cache", GYMNOS_TEST_EPOCH_PAUSE="1"), tmp_path / "worker.log"
    )
    try:
        worker.wait_ready()
        config = tiny(epochs=4, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])
        config["training"]["batch_size"] = 48
        execution = launching.launch(config)
        assert values(execution)["params.training.batch_size"] == 48  # from the launch, before any epoch
        query = "params.training.batch_size = 48 and metrics.loss"
        wait_for(lambda: select(execution.experiment, Filters(q=query)).runs.exists(), timeout=120, message="epoch 1")
        assert Execution.objects.get(pk=execution.pk).status == "running"
        wait_for(lambda: Execution.objects.get(pk=execution.pk).status != "running", timeout=120, message="run end")
        execution.refresh_from_db()
        assert execution.status == "succeeded", execution.error
        assert values(execution)["metrics.loss"] == execution.summary["loss"]["last"]
        assert values(execution)["metrics.test_loss"] == execution.test_loss
        assert counts.by_status() == direct_counts()
    finally:
        worker.stop()
        flush()
