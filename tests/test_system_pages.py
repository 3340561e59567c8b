"""The System panels' data, the compare overlay's, share links' and the API's: who gets what, from where."""

import json

import pytest
from django.core.management import call_command
from django.test import Client

from experiments.index.sync import sync_trainings
from experiments.models import Execution, ShareLink
from tests.folders import make_run, permalink, write_execution

pytestmark = pytest.mark.django_db

HEADER = {"time": 0.0, "started_at": 1764412345.0, "interval": 5.0}


def sample(t, memory=700.0, **fields):
    return {"time": t, "cpu_percent": 95.0, "memory_mb": memory, "system_cpu_percent": 50.0, **fields}


def write_system(folder, *lines, mode="wb"):
    with open(folder / "system_metrics.jsonl", mode) as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in lines).encode())


@pytest.fixture
def ended(root):
    """A finished run whose folder held three samples and an epoch end when it was synced."""
    folder = write_execution(root, name="06-16-31__08-04-2019")
    write_system(folder, HEADER, sample(5), {"time": 6, "epoch_end": 1}, sample(10, 812.0), sample(15, 750.0))
    return _synced(root, "06-16-31__08-04-2019")


def _synced(root, name):
    sync_trainings(root)
    return Execution.objects.select_related("experiment").get(folder_name=name)


@pytest.fixture
def training(root):
    """A run still training (no metrics.json yet): its samples are read from the folder."""
    folder = write_execution(root, name="06-39-51__10-04-2019", metrics=None)
    write_system(folder, HEADER, sample(5, 500.0))
    execution = _synced(root, "06-39-51__10-04-2019")
    assert execution.status == "running"
    return execution, folder


def test_a_finished_runs_series_come_from_the_index(ended, owner_client):
    data = owner_client.get(f"/executions/{ended.pk}/system.json").json()
    assert data["source"] == "index"
    assert data["live"] is False
    assert data["append"] is False
    assert data["series"]["memory_mb"] == {"x": [5.0, 10.0, 15.0], "y": [700.0, 812.0, 750.0]}
    assert data["epoch_ends"] == [6.0]
    assert data["summary"]["peak_memory_mb"] == 812.0
    assert data["summary"]["samples"] == 3


def test_a_finished_run_whose_folder_is_gone_still_has_its_series(ended, owner_client, root):
    (root / "boston_housing" / "executions" / ended.folder_name / "system_metrics.jsonl").unlink()
    data = owner_client.get(f"/executions/{ended.pk}/system.json").json()
    assert data["series"]["memory_mb"]["y"] == [700.0, 812.0, 750.0]


def test_a_training_run_is_read_from_its_folder_and_polls_get_only_what_was_appended(training, owner_client):
    execution, folder = training
    first = owner_client.get(f"/executions/{execution.pk}/system.json").json()
    assert first["source"] == "file"
    assert first["live"] is True
    assert first["append"] is False
    assert first["series"]["memory_mb"] == {"x": [5.0], "y": [500.0]}
    assert first["interval"] == 5.0
    write_system(folder, sample(10, 520.0), {"time": 11.0, "epoch_end": 1}, mode="ab")
    with open(folder / "system_metrics.jsonl", "ab") as handle:
        handle.write(b'{"time": 15.0, "cpu_')  # being written right now
    more = owner_client.get(f"/executions/{execution.pk}/system.json?offset={first['offset']}").json()
    assert more["append"] is True
    assert more["series"]["memory_mb"] == {"x": [10.0], "y": [520.0]}
    assert more["epoch_ends"] == [11.0]
    assert more["offset"] > first["offset"]
    nothing_new = owner_client.get(f"/executions/{execution.pk}/system.json?offset={more['offset']}").json()
    assert nothing_new["series"] == {}
    assert nothing_new["offset"] == more["offset"]
    # A junk offset reads the file whole, as a first poll does.
    again = owner_client.get(f"/executions/{execution.pk}/system.json?offset=-3x").json()
    assert again["append"] is False
    assert again["series"]["memory_mb"]["y"] == [500.0, 520.0]


def test_a_queued_run_without_a_folder_has_nothing_yet(owner_client, root, ended):
    queued = Execution.objects.create(experiment=ended.experiment, status="queued")
    data = owner_client.get(f"/executions/{queued.pk}/system.json").json()
    assert data == {
        "live": True, "source": "none", "append": False, "offset": None, "interval": None,
        "series": {}, "epoch_ends": [], "summary": {},
    }  # fmt: skip


def test_the_panel_is_on_the_run_page_and_needs_a_login(ended, owner_client, outsider):
    page = owner_client.get(permalink(ended)).content.decode()
    assert f'data-url="/executions/{ended.pk}/system.json"' in page
    assert "js/system." in page
    response = outsider.get(f"/executions/{ended.pk}/system.json")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert owner_client.post(f"/executions/{ended.pk}/system.json").status_code == 405
    assert owner_client.get("/executions/999999/system.json").status_code == 404


def test_a_share_link_opens_its_runs_series_and_nothing_once_revoked(ended, owner_client, owner):
    link = ShareLink.objects.create(kind=ShareLink.Kind.EXECUTION, execution=ended, created_by=owner)
    visitor = Client()
    page = visitor.get(f"/s/{link.token}/").content.decode()
    assert f'data-url="/s/{link.token}/system.json"' in page
    data = visitor.get(f"/s/{link.token}/system.json").json()
    assert data["series"]["memory_mb"]["y"] == [700.0, 812.0, 750.0]
    owner_client.post(f"/shares/{link.pk}/revoke/")
    assert visitor.get(f"/s/{link.token}/system.json").status_code == 404
    assert visitor.get("/s/not-a-token/system.json").status_code == 404


def test_the_compare_overlay_gives_one_metric_of_every_run(root, ended, training, owner_client, owner):
    running, _ = training
    plain = make_run(root, "07-00-00__10-04-2019")  # from before system metrics were recorded
    runs = f"{ended.pk},{running.pk},{plain.pk}"
    page = owner_client.get(f"/compare/?runs={runs}").content.decode()
    assert f'data-url="/compare/system.json?runs={runs}"' in page
    data = owner_client.get(f"/compare/system.json?runs={runs}").json()
    assert data["metric"] == "memory_mb"  # the default
    assert data["metrics"] == ["cpu_percent", "memory_mb", "system_cpu_percent"]
    assert [(run["id"], run["order"], run["y"]) for run in data["runs"]] == [
        (ended.pk, 0, [700.0, 812.0, 750.0]),
        (running.pk, 1, [500.0]),
    ]  # the run without system metrics has no line
    chosen = owner_client.get(f"/compare/system.json?runs={runs}&metric=cpu_percent").json()
    assert chosen["metric"] == "cpu_percent"
    assert chosen["runs"][0]["y"] == [95.0, 95.0, 95.0]
    for junk in ("nope", "../../etc", "x" * 500):
        assert owner_client.get(f"/compare/system.json?runs={runs}&metric={junk}").json()["metric"] == "memory_mb"
    link = ShareLink.objects.create(kind=ShareLink.Kind.COMPARISON, runs=[ended.pk, plain.pk], created_by=owner)
    shared = Client().get(f"/s/{link.token}/system.json?metric=memory_mb").json()
    assert [run["id"] for run in shared["runs"]] == [ended.pk]
    assert f'data-url="/s/{link.token}/system.json"' in Client().get(f"/s/{link.token}/").content.decode()


def test_the_api_returns_the_series_aligned_on_time(ended, owner, capsys, client):
    call_command("api_token", owner.username)
    token = capsys.readouterr().out.strip()
    response = client.get(f"/api/executions/{ended.pk}/system", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    data = response.json()
    assert data["id"] == ended.pk
    assert data["source"] == "index"
    assert data["samples"] == 3
    assert data["time"] == [5.0, 10.0, 15.0]
    assert data["series"]["memory_mb"] == [700.0, 812.0, 750.0]
    assert data["epoch_ends"] == [6.0]
    assert data["summary"]["peak_memory_mb"] == 812.0
    assert client.get(f"/api/executions/{ended.pk}/system").status_code == 401
    missing = client.get("/api/executions/999999/system", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    schema = client.get("/api/openapi.json").json()
    assert set(schema["paths"]["/api/executions/{execution_id}/system"]["get"]["responses"]) >= {"200", "404"}


def test_a_worker_snapshot_is_read_within_bounds_and_as_numbers_only():
    from experiments.system import machines

    snapshot = {
        "cpu_percent": 12.5, "cpu_count": 8, "memory_used_mb": 5120, "memory_total_mb": 16384, "memory_percent": 31.2,
        "gpus": [{"index": 0, "name": "NVIDIA H200", "utilization_percent": 97, "memory_used_mb": 71680,
                  "memory_total_mb": 143360}, "junk"],
        "at": 1000.0,
    }  # fmt: skip
    shown = machines.read(json.dumps(snapshot), now=1012.4)
    assert shown is not None
    assert shown["memory_used_gb"] == 5.0
    assert shown["memory_total_gb"] == 16.0
    assert shown["age_seconds"] == 12
    assert shown["gpus"] == [
        {"index": 0, "name": "NVIDIA H200", "utilization_percent": 97, "memory_used_gb": 70.0, "memory_total_gb": 140.0}
    ]
    odd = machines.read(json.dumps({"cpu_percent": "lots", "gpus": "none", "memory_used_mb": True}))
    assert odd is not None
    assert odd["cpu_percent"] is None
    assert odd["gpus"] == []
    assert odd["memory_used_gb"] is None
    for junk in (None, b"", b"not json", b"[1]", b"[" * 50_000, b"{}" + b" " * machines.MAX_BYTES):
        assert machines.read(junk) is None  # the last is a valid object, but over the bound: not parsed at all
