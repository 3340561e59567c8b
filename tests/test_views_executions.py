"""The execution page, the JSON it polls (status, charts, checkpoints, files) and its log tail."""

import datetime as dt
import json
import re

import pytest

from experiments.models import Execution, Experiment, MetricHistory
from tests.folders import permalink

pytestmark = pytest.mark.django_db


def test_the_permalink_shows_status_hardware_config_and_downloads(owner_client, trained):
    page = owner_client.get(permalink(trained)).content.decode()
    assert '<span class="badge succeeded">succeeded</span>' in page
    assert "15 epochs" in page
    assert "Test CPU 9000 · 8 threads" in page
    assert "16.0\xa0GB" in page
    assert "&quot;batch_size&quot;: 32" in page  # the config, readable
    assert f'href="/runs/new/?from={trained.pk}"' in page
    assert "Run again with changes" in page
    for name in (
        "model.h5",
        "training_config.json",
        "metrics.json",
        "execution.log",
        "callbacks/model_checkpoint/weights.05-27.07.h5",
    ):
        assert f'{permalink(trained)}files/{name}"' in page
    assert f'{permalink(trained)}download.zip"' in page
    assert "vendor/plotly/plotly-gymnos-basic." in page  # a regressor's charts: lines and bars (static/vendor/plotly)


def test_a_teammate_sees_the_page_but_no_cancel_or_rerun_button_for_a_live_run(teammate_client, trained):
    Execution.objects.filter(pk=trained.pk).update(status="running", epochs_total=20)
    page = teammate_client.get(permalink(trained)).content.decode()
    assert "Epoch 15 of 20" in page
    assert "Cancel run" not in page


def test_the_owner_sees_progress_eta_and_cancel_while_it_runs(owner_client, trained):
    from django.utils import timezone

    Execution.objects.filter(pk=trained.pk).update(
        status="running", epochs_total=30, started_at=timezone.now() - dt.timedelta(seconds=60), finished_at=None
    )
    page = owner_client.get(permalink(trained)).content.decode()
    assert "Epoch 15 of 30" in page
    assert re.search(r"about 1m 0[0-2]s left", page)
    assert 'style="width: 50%"' in page
    assert "Cancel run" in page


def test_an_outsider_is_sent_to_log_in(outsider, trained):
    for url in (
        permalink(trained),
        f"/executions/{trained.pk}/",
        f"/executions/{trained.pk}/data.json",
        f"/executions/{trained.pk}/log.json",
    ):
        response = outsider.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_wrong_methods_are_405(owner_client, trained):
    for url in (permalink(trained), f"/executions/{trained.pk}/data.json", f"/executions/{trained.pk}/log.json"):
        assert owner_client.post(url).status_code == 405
    assert owner_client.get(f"/executions/{trained.pk}/cancel/").status_code == 405


def test_an_unknown_run_is_404(owner_client, trained):
    assert owner_client.get("/experiments/boston_housing/executions/nope/").status_code == 404
    assert owner_client.get("/executions/999999/data.json").status_code == 404


def test_the_id_url_redirects_to_the_permalink_once_there_is_a_folder(owner_client, trained):
    response = owner_client.get(f"/executions/{trained.pk}/")
    assert response.status_code == 302
    assert response["Location"] == permalink(trained)


def test_a_queued_run_without_a_folder_has_a_page_that_says_it_waits(owner_client, owner):
    experiment = Experiment.objects.create(name="iris")
    queued = Execution.objects.create(
        experiment=experiment,
        status="queued",
        title="Iris",
        queue="default",
        job_id="execution-1",
        epochs_total=5,
        launched_by=owner,
    )
    page = owner_client.get(f"/executions/{queued.pk}/").content.decode()
    assert "Queued run" in page
    assert "Waiting for a free worker on the <code>default</code> queue" in page
    assert "Charts appear here after the first epoch" in page
    assert "launched by olivia" in page
    data = owner_client.get(f"/executions/{queued.pk}/data.json").json()
    assert data["live"]
    assert data["charts"] == {}
    assert data["permalink"] is None


def test_the_hardware_panel_follows_the_run_opened_while_it_was_queued(owner_client, owner, trained):
    experiment = Experiment.objects.create(name="iris")
    queued = Execution.objects.create(
        experiment=experiment, status="queued", title="Iris", queue="default", job_id="execution-2", launched_by=owner
    )
    assert (
        "Recorded in metrics.json when the run ends."
        in owner_client.get(f"/executions/{queued.pk}/data.json").json()["hardware_html"]
    )
    Execution.objects.filter(pk=queued.pk).update(status="succeeded", hardware=trained.hardware)
    panel = owner_client.get(f"/executions/{queued.pk}/data.json").json()["hardware_html"]
    assert "Test CPU 9000 · 8 threads" in panel
    assert "Recorded in metrics.json" not in panel


def test_the_data_has_train_and_val_per_chart_and_checkpoints_on_val_loss(owner_client, trained):
    data = owner_client.get(f"/executions/{trained.pk}/data.json").json()
    assert list(data["charts"]) == ["loss", "mean_absolute_error"]
    assert data["charts"]["loss"]["train"]["x"] == list(range(1, 16))
    assert data["charts"]["loss"]["val"]["y"][0] == 120.0
    assert [(m["x"], m["y"]) for m in data["checkpoints"]] == [(5, 24.0), (10, 12.0), (15, 8.0)]
    assert data["checkpoints"][0]["url"] == permalink(trained) + "files/callbacks/model_checkpoint/weights.05-27.07.h5"
    assert owner_client.get(data["checkpoints"][0]["url"]).status_code == 200  # the marker's click downloads it
    assert data["elapsed"][0] == ["load_data", 0.78]
    assert data["elapsed"][-1][0] == "evaluate_model"
    assert not data["live"]
    assert "succeeded" in data["status_html"]
    assert "weights.15-16.03.h5" in data["files_html"]


def test_the_page_carries_the_charts_data_json_would_answer(owner_client, trained):
    """A first view draws its curves from the page itself (issue 25): the same charts, checkpoints and stage times as
    data.json, in an inert JSON element (no inline script: the CSP runs none)."""
    page = owner_client.get(permalink(trained)).content.decode()
    found = re.search(r'<script id="first-data" type="application/json">(.*?)</script>', page, re.S)
    assert found, page
    first = json.loads(found.group(1))
    data = owner_client.get(f"/executions/{trained.pk}/data.json").json()
    for key in ("charts", "checkpoints", "elapsed", "epoch_seconds", "live", "epochs", "permalink"):
        assert first[key] == data[key], key
    assert "status_html" not in first  # the page's own status, files and hardware are the first answer's


def test_charts_follow_epochs_written_while_it_trains(owner_client, trained):
    Execution.objects.filter(pk=trained.pk).update(status="running")
    Execution.objects.record_epoch(
        trained.pk,
        {
            "loss": [5.0, 4.0, 3.5, 3.0, 2.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.04, 0.03, 0.02, 0.01],
            "val_loss": [6.0] * 16,
        },
        40,
    )
    data = owner_client.get(f"/executions/{trained.pk}/data.json").json()
    assert data["live"]
    assert data["epochs"] == 16
    assert data["epochs_total"] == 40
    assert data["charts"]["loss"]["train"]["y"][-1] == 0.01
    assert "Epoch 16 of 40" in data["status_html"]


def test_long_histories_are_downsampled_for_the_chart_but_keep_their_extremes(owner_client, trained):
    values: list[float | None] = [float(i % 997) for i in range(50_000)]
    values[31_337] = -1.0
    MetricHistory.objects.store({trained.pk: {"loss": values}})
    trace = owner_client.get(f"/executions/{trained.pk}/data.json").json()["charts"]["loss"]["train"]
    assert len(trace["y"]) <= 2000
    assert trace["points"] == 50_000
    assert min(trace["y"]) == -1.0
    assert max(trace["y"]) == 996.0
    assert 31_338 in trace["x"]


def test_the_log_tail_is_the_last_200_lines_then_what_was_appended(owner_client, trained):
    log_path = f"{trained.folder_path}/execution.log"
    with open(log_path, "w", encoding="utf-8") as handle:
        handle.writelines(f"line {i}\n" for i in range(500))
    first = owner_client.get(f"/executions/{trained.pk}/log.json").json()
    lines = first["data"].splitlines()
    assert len(lines) == 200
    assert lines[0] == "line 300"
    assert lines[-1] == "line 499"
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write("epoch 16 done — naïve\n")
    more = owner_client.get(f"/executions/{trained.pk}/log.json", {"offset": first["offset"]}).json()
    assert more["data"] == "epoch 16 done — naïve\n"
    again = owner_client.get(f"/executions/{trained.pk}/log.json", {"offset": more["offset"]}).json()
    assert again["data"] == ""
    assert again["offset"] == more["offset"]


def test_a_run_without_a_log_has_an_empty_tail(owner_client, owner):
    queued = Execution.objects.create(experiment=Experiment.objects.create(name="iris"), status="queued")
    assert owner_client.get(f"/executions/{queued.pk}/log.json").json() == {
        "offset": 0,
        "size": 0,
        "data": "",
        "cut": False,
        "live": True,
        "unavailable": "no log yet",
    }


def test_the_seed_example_folder_renders(owner_client, seed_run):
    page = owner_client.get(permalink(seed_run)).content.decode()
    assert "15.75" in page
    assert "22.42" in page
    data = owner_client.get(f"/executions/{seed_run.pk}/data.json").json()
    assert data["checkpoints"] == []  # the seed's checkpoints are at epochs 5-15, past its 4 epochs
