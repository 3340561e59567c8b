"""The sweeps' pages: "Sweep from this run", the sweep page and its data, cancel, share links."""

import datetime as dt
import json

import django_rq
import pytest
from django.test import Client
from django.utils import timezone

from audit.models import Entry
from sweeps.launching import launch_sweep
from sweeps.models import Sweep, SweepShare, Trial
from tests.folders import make_run, permalink
from tests.helpers import tiny

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("real_queues")]


@pytest.fixture
def sweep(owner):
    return launch_sweep(
        {
            "name": "width and rate",
            "base": tiny(),
            "parameters": {
                "model.network[0].units": {"choice": [4, 8, 16]},
                "model.compilation.optimizer.learning_rate": {
                    "distribution": "log_uniform",
                    "low": 0.001,
                    "high": 0.1,
                },
            },
            "method": "random",
            "trials": 3,
        },
        user=owner,
    )


@pytest.fixture
def with_trials(sweep, root):
    """Two trials that ended (runs indexed from real folders) and one still being asked for."""
    first = make_run(root, "06-16-31__08-04-2019")
    second = make_run(root, "06-16-32__08-04-2019")
    Trial.objects.create(
        sweep=sweep, number=0, execution=first, value=7.5,
        params={"model.network[0].units": 16, "model.compilation.optimizer.learning_rate": 0.01},
    )  # fmt: skip
    Trial.objects.create(
        sweep=sweep, number=1, execution=second, value=9.25,
        params={"model.network[0].units": 4, "model.compilation.optimizer.learning_rate": 0.002},
    )  # fmt: skip
    error = "model.network[0]: dense rejected its arguments"
    Trial.objects.create(sweep=sweep, number=2, error=error, outcome="failed")
    return sweep


# --- "Sweep from this run" ------------------------------------------------------------------------


def test_a_runs_page_offers_a_sweep_to_whoever_may_launch(owner_client, teammate_client, trained):
    assert "Sweep from this run" in owner_client.get(permalink(trained)).content.decode()
    assert "Sweep from this run" not in teammate_client.get(permalink(trained)).content.decode()
    assert 'href="/sweeps/"' in owner_client.get("/").content.decode()  # the nav's Sweeps link


def test_the_form_lists_the_runs_config_paths_with_their_values(owner_client, trained):
    page = owner_client.get(f"/sweeps/new/?from={trained.pk}").content.decode()
    for path in ("model.network[0].units", "training.batch_size", "model.compilation.optimizer.learning_rate"):
        assert path in page
    assert "experiment.name" not in page
    assert "val_loss" in page  # the metrics the run logged, to choose the objective from


def form_for(rows, **fields):
    """POST data ticking ``rows`` ({index: {...}}) of the form's table."""
    data = {"method": "random", "trials": "4", "parallel": "2", "metric": "val_loss", "which": "best",
            "pruner": "none", "warmup_epochs": "3", "direction": ""}  # fmt: skip
    data.update(fields)
    for index, row in rows.items():
        data[f"use-{index}"] = "on"
        data.update({f"{key}-{index}": value for key, value in row.items()})
    return data


def row_of(page, path):
    """The index of ``path``'s row in the form."""
    marker = '<input type="hidden" name="path-'
    before = page[: page.index(f'value="{path}"')]
    return int(before[before.rindex(marker) + len(marker) :].split('"')[0])


def test_launching_from_the_form_starts_the_sweep_from_that_run(owner_client, owner, trained):
    page = owner_client.get(f"/sweeps/new/?from={trained.pk}").content.decode()
    units, rate = row_of(page, "model.network[0].units"), row_of(page, "model.compilation.optimizer.learning_rate")
    data = form_for(
        {
            units: {"path": "model.network[0].units", "kind": "choice", "choices": "8, 16, 32"},
            rate: {"path": "model.compilation.optimizer.learning_rate", "kind": "log_uniform", "low": "1e-4",
                   "high": "0.1"},
        },
        pruner="median",
    )  # fmt: skip
    response = owner_client.post(f"/sweeps/new/?from={trained.pk}", data)
    sweep = Sweep.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/sweeps/{sweep.pk}/"
    assert sweep.base_execution == trained
    assert sweep.created_by == owner
    assert sweep.trials_total == 4
    assert sweep.document["parameters"] == {
        "model.network[0].units": {"distribution": "choice", "choice": [8, 16, 32]},
        "model.compilation.optimizer.learning_rate": {"distribution": "log_uniform", "low": 0.0001, "high": 0.1},
    }
    assert sweep.document["pruner"] == {"type": "median", "warmup_epochs": 3, "startup_trials": 5}
    assert django_rq.get_queue("default").job_ids == [f"sweep-{sweep.pk}-advance"]
    assert Entry.objects.get(action=Entry.Action.SWEEP_LAUNCH).details == {}


def test_problems_show_at_their_row_and_nothing_starts(owner_client, trained):
    page = owner_client.get(f"/sweeps/new/?from={trained.pk}").content.decode()
    units = row_of(page, "model.network[0].units")
    data = form_for({units: {"path": "model.network[0].units", "kind": "int_uniform", "low": "64", "high": "8"}})
    page = owner_client.post(f"/sweeps/new/?from={trained.pk}", data).content.decode()
    assert "high: must be above low (64), got 8" in page
    data = form_for({units: {"path": "model.network[0].units", "kind": "int_uniform", "low": "0", "high": "8"}})
    page = owner_client.post(f"/sweeps/new/?from={trained.pk}", data).content.decode()
    assert "0 makes the config invalid: model.network[0].units: must be a positive integer, got 0" in page
    page = owner_client.post(f"/sweeps/new/?from={trained.pk}", form_for({})).content.decode()
    assert "Tick at least one config path" in page
    assert Sweep.objects.count() == 0


def test_a_teammate_sees_the_form_but_cannot_start_a_sweep(teammate_client, trained):
    page = teammate_client.get(f"/sweeps/new/?from={trained.pk}").content.decode()
    assert "launching needs the <code>experiments.add_execution</code> permission" in page
    data = form_for({0: {"path": "training.epochs", "kind": "choice", "choices": "1, 2"}})
    assert teammate_client.post(f"/sweeps/new/?from={trained.pk}", data).status_code == 403
    assert Sweep.objects.count() == 0


def test_an_outsider_is_sent_to_log_in(outsider, sweep):
    for url in ("/sweeps/", f"/sweeps/{sweep.pk}/", f"/sweeps/{sweep.pk}/data.json", "/sweeps/new/?from=1"):
        response = outsider.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


# --- the sweep page ---------------------------------------------------------------------------------


def test_the_sweep_page_shows_counts_the_best_trial_and_every_trial(owner_client, with_trials):
    page = owner_client.get(f"/sweeps/{with_trials.pk}/").content.decode()
    assert 'data-count="done">2<' in page
    assert 'data-count="failed">1<' in page
    assert 'data-count="total">3<' in page
    assert "Trial 0</strong>" in page
    assert 'class="best-value">7.5<' in page
    first = with_trials.trials.get(number=0).execution
    assert f'href="/executions/{first.pk}/"' in page
    assert "dense rejected its arguments" in page
    assert "Cancel sweep" in page
    assert "vendor/plotly/plotly-strict." in page


def test_a_trial_waiting_for_a_worker_counts_as_queued_not_running(owner_client, sweep, root):
    waiting = make_run(root, "06-16-33__08-04-2019", status="queued", finished_at=None)
    training = make_run(root, "06-16-34__08-04-2019", status="running", finished_at=None)
    Trial.objects.create(sweep=sweep, number=0, execution=training, params={})
    Trial.objects.create(sweep=sweep, number=1, execution=waiting, params={})
    page = owner_client.get(f"/sweeps/{sweep.pk}/").content.decode()
    assert 'data-count="running">1<' in page
    assert 'data-count="queued">1<' in page
    counts = owner_client.get(f"/sweeps/{sweep.pk}/data.json").json()["summary"]["counts"]
    assert (counts["running"], counts["queued"]) == (1, 1)


def test_a_failed_trials_row_says_why_in_the_first_line_of_its_runs_error(owner_client, sweep, root):
    error = "ValueError: Input 0 of layer dense is incompatible\nTraceback (most recent call last):\n  File ..."
    failed = make_run(root, "06-16-35__08-04-2019", status="failed", error=error)
    Trial.objects.create(sweep=sweep, number=0, execution=failed, params={}, outcome="failed")
    page = owner_client.get(f"/sweeps/{sweep.pk}/").content.decode()
    row = page[page.index('data-trial="0"') :]
    row = row[: row.index("</tr>")]
    assert "ValueError: Input 0 of layer dense is incompatible" in row
    assert "Traceback" not in row
    trial = owner_client.get(f"/sweeps/{sweep.pk}/data.json").json()["summary"]["trials"][0]
    assert trial["reason"] == "ValueError: Input 0 of layer dense is incompatible"


def test_the_started_message_is_tagged_so_the_page_drops_it_once_the_sweep_ended(owner_client, trained):
    document = {"base": trained.pk, "parameters": {"training.batch_size": {"choice": [16, 32]}}, "method": "grid"}
    response = owner_client.post("/sweeps/new/", {"document": json.dumps(document)}, follow=True)
    page = response.content.decode()
    assert '<li class="started success">Started Boston Housing sweep: 2 trials.</li>' in page


def test_the_sweeps_list_has_a_new_sweep_button_for_whoever_may_launch(owner_client, teammate_client):
    assert 'id="new-sweep" href="/sweeps/new/"' in owner_client.get("/sweeps/").content.decode()
    assert 'id="new-sweep"' not in teammate_client.get("/sweeps/").content.decode()


def test_new_sweep_offers_the_runs_to_start_from_and_a_document_to_paste(owner_client, trained):
    page = owner_client.get("/sweeps/new/").content.decode()
    assert f'<option value="{trained.pk}">boston_housing/{trained.folder_name}' in page
    assert f"&quot;base&quot;: {trained.pk}" in page  # the example document starts from the newest run
    document = {"base": trained.pk, "parameters": {"training.batch_size": {"choice": [16, 32]}}, "method": "grid"}
    response = owner_client.post("/sweeps/new/", {"document": json.dumps(document)})
    sweep = Sweep.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/sweeps/{sweep.pk}/"
    assert sweep.base_execution == trained
    assert sweep.trials_total == 2


def test_a_pasted_document_with_problems_lists_them_all_and_starts_nothing(owner_client, trained):
    document = {"base": trained.pk, "parameters": {"training.batch_size": {"choice": [0]}}, "parallel": 0}
    page = owner_client.post("/sweeps/new/", {"document": json.dumps(document)}).content.decode()
    problems = page[page.index('id="sweep-problems"') :]
    assert "<code>parallel</code>" in problems
    assert "parameters[&quot;training.batch_size&quot;]" in problems
    page = owner_client.post("/sweeps/new/", {"document": "{not json"}).content.decode()
    assert "The sweep document is not valid JSON" in page
    assert Sweep.objects.count() == 0


def test_the_pages_data_gives_the_charts_their_series_and_the_html_to_swap_in(owner_client, with_trials):
    with_trials.importance = {"model.network[0].units": 0.8, "model.compilation.optimizer.learning_rate": 0.2}
    with_trials.save(update_fields=["importance"])
    body = owner_client.get(f"/sweeps/{with_trials.pk}/data.json").json()
    summary = body["summary"]
    assert [t["value"] for t in summary["trials"]] == [7.5, 9.25, None]
    assert summary["running_best"] == [7.5, 7.5, 7.5]
    assert summary["scales"] == {"model.network[0].units": "linear", "model.compilation.optimizer.learning_rate": "log"}
    assert summary["importance"]["model.network[0].units"] == 0.8
    assert 'data-count="done">2<' in body["html"]


def test_the_sweeps_list_shows_each_sweep_with_its_best_value(owner_client, with_trials):
    page = owner_client.get("/sweeps/").content.decode()
    assert "width and rate" in page
    assert "7.5" in page
    assert f'href="/sweeps/{with_trials.pk}/"' in page


def test_cancel_is_a_post_for_whoever_may_launch(owner_client, teammate_client, sweep):
    assert owner_client.get(f"/sweeps/{sweep.pk}/cancel/").status_code == 405
    assert teammate_client.post(f"/sweeps/{sweep.pk}/cancel/").status_code == 403
    response = owner_client.post(f"/sweeps/{sweep.pk}/cancel/")
    assert response.status_code == 302
    assert response["Location"] == f"/sweeps/{sweep.pk}/"
    sweep.refresh_from_db()
    assert sweep.status == "cancelled"
    assert Entry.objects.filter(action=Entry.Action.SWEEP_CANCEL).count() == 1
    page = owner_client.get(f"/sweeps/{sweep.pk}/").content.decode()
    assert "Cancel sweep" not in page
    assert "cancelled by a user" in page


def test_cancel_needs_the_csrf_token(owner, sweep):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(f"/sweeps/{sweep.pk}/cancel/").status_code == 403


# --- share links ------------------------------------------------------------------------------------


def test_a_share_link_shows_the_sweep_read_only_and_nothing_else(owner_client, owner, with_trials):
    response = owner_client.post(f"/sweeps/{with_trials.pk}/share/", {"expires_in": "7"})
    assert response.status_code == 302
    link = SweepShare.objects.get()
    assert link.created_by == owner
    assert link.expires_at is not None
    assert link.expires_at > timezone.now() + dt.timedelta(days=6)
    visitor = Client()
    page = visitor.get(f"/sweeps/s/{link.token}/").content.decode()
    assert "width and rate" in page
    assert 'data-count="done">2<' in page
    assert "/executions/" not in page
    assert "Cancel sweep" not in page
    assert "Share…" not in page
    data = visitor.get(f"/sweeps/s/{link.token}/data.json").json()
    assert data["summary"]["best"]["value"] == 7.5
    assert "/executions/" not in data["html"]
    # The link opens this sweep and nothing else.
    for url in (f"/sweeps/{with_trials.pk}/", "/sweeps/", f"/api/sweeps/{with_trials.pk}"):
        assert visitor.get(url).status_code in (302, 401)


def test_a_revoked_or_expired_share_link_opens_nothing(owner_client, teammate_client, with_trials, owner):
    link = SweepShare.objects.create(sweep=with_trials, created_by=owner)
    assert teammate_client.post(f"/sweeps/shares/{link.pk}/revoke/").status_code == 403
    assert owner_client.post(f"/sweeps/shares/{link.pk}/revoke/").status_code == 302
    assert Client().get(f"/sweeps/s/{link.token}/").status_code == 404
    expired = SweepShare.objects.create(
        sweep=with_trials, created_by=owner, expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    assert Client().get(f"/sweeps/s/{expired.token}/data.json").status_code == 404
    assert Client().get("/sweeps/s/no-such-token/").status_code == 404
