"""The new-run form: fields and JSON, errors where they belong, clone, launch onto a real Redis."""

import json

import django_rq
import pytest
from django.test import Client

from experiments.models import Execution
from tests.folders import make_run
from tests.forms import form_for
from tests.helpers import seed_config, tiny

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("real_queues"),
]  # launching enqueues on commit


def test_the_form_starts_from_the_boston_example(owner_client):
    page = owner_client.get("/runs/new/").content.decode()
    assert 'value="Boston Housing"' in page
    assert '<option value="boston_housing" selected>' in page
    assert 'name="epochs" value="25"' in page
    assert 'value="early_stopping" id="id_callbacks_0" checked' in page
    assert "&quot;standard_scaler&quot;" in page
    assert "js/run_form." in page


def test_launching_queues_the_run_and_opens_its_page(owner_client, owner):
    response = owner_client.post("/runs/new/", form_for(tiny(epochs=3)))
    execution = Execution.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/executions/{execution.pk}/"
    assert execution.status == "queued"
    assert execution.launched_by == owner
    assert execution.epochs_total == 3
    assert django_rq.get_queue("default").job_ids == [f"execution-{execution.pk}"]
    page = owner_client.get(response["Location"]).content.decode()
    assert "Queued Boston Housing" in page
    assert "Waiting for a free worker" in page


def test_a_changed_field_wins_over_the_json_and_unchanged_ones_leave_it(owner_client):
    config = tiny(epochs=3)
    edited = json.loads(json.dumps(config))
    edited["training"]["batch_size"] = 8  # edited in the JSON only
    owner_client.post(
        "/runs/new/",
        form_for(
            edited, base=config, epochs=4, optimizer="sgd", callbacks=["terminate_on_nan"], experiment_name="Tuned"
        ),
    )
    saved = Execution.objects.get().config
    assert saved is not None
    assert saved["training"]["epochs"] == 4
    assert saved["training"]["batch_size"] == 8
    assert saved["model"]["compilation"]["optimizer"] == "sgd"
    assert saved["experiment"]["name"] == "Tuned"
    assert saved["training"]["callbacks"] == [{"type": "terminate_on_nan"}]


def test_problems_show_at_their_field_or_json_path_and_nothing_is_queued(owner_client):
    config = tiny()
    config["model"]["network"][1]["units"] = -5
    page = owner_client.post("/runs/new/", form_for(config, epochs=3, val=0.7, test=0.5)).content.decode()
    assert Execution.objects.count() == 0
    assert django_rq.get_queue("default").job_ids == []
    fractions = page[page.index('id="id_fit"') : page.index('id="id_test"')]
    assert "training.samples: fractions add up to" in fractions
    problems = page[page.index('id="json-problems"') :]
    assert "<code>model.network[1].units</code>: must be a positive integer, got -5" in problems
    assert "&quot;units&quot;: -5" in page  # the JSON comes back as typed


def test_a_field_error_and_the_jsons_problems_show_at_once(owner_client):
    """-3 epochs in its field, a misspelt layer argument in the JSON: both told in one answer."""
    config = tiny()
    config["model"]["network"][0]["activaton"] = "relu"
    page = owner_client.post("/runs/new/", form_for(config, epochs=-3)).content.decode()
    epochs = page[page.index('id="id_epochs"') - 400 : page.index('id="id_batch_size"')]
    assert "training.epochs: must be a positive integer, got -3" in epochs
    problems = page[page.index('id="json-problems"') :]
    assert "<code>model.network[0].activaton</code>: unknown argument for dense; did you mean" in problems
    assert Execution.objects.count() == 0


def test_an_unknown_key_is_reported_at_its_path(owner_client):
    config = tiny()
    config["training"]["epoch"] = 3
    page = owner_client.post("/runs/new/", form_for(config)).content.decode()
    assert "<code>training.epoch</code>: unknown key; did you mean &#x27;epochs&#x27;?" in page


def test_json_that_does_not_parse_is_an_error_beside_it(owner_client):
    data = form_for(tiny())
    data["config"] = '{"experiment": '
    page = owner_client.post("/runs/new/", data).content.decode()
    assert "The config is not valid JSON" in page
    assert "line 1" in page
    assert Execution.objects.count() == 0


def test_clone_fills_the_form_from_a_run(owner_client, root, owner):
    config = seed_config()
    config["training"]["epochs"] = 7
    source = make_run(root, "06-16-31__08-04-2019", config=config, owner=owner)
    page = owner_client.get("/runs/new/", {"from": source.pk}).content.decode()
    assert 'name="epochs" value="7"' in page
    assert "06-16-31__08-04-2019" in page
    assert "A copy of" in page
    assert owner_client.get("/runs/new/", {"from": 999999}).status_code == 404


def test_clone_of_a_config_that_does_not_validate_fills_the_fields_it_can(owner_client, root, owner):
    config = seed_config()
    config["training"]["callbacks"] = [{"type": ["not", "a", "name"]}, {"type": "terminate_on_nan"}]
    config["model"]["compilation"]["optimizer"] = {"type": "sgd", "learning_rate": "fast"}
    source = make_run(root, "06-16-31__08-04-2019", config=config, owner=owner)
    response = owner_client.get("/runs/new/", {"from": source.pk})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="terminate_on_nan" id="id_callbacks_3" checked' in page
    assert '<option value="sgd" selected>' in page


def test_a_teammate_without_the_permission_sees_the_form_but_cannot_launch(teammate_client):
    page = teammate_client.get("/runs/new/").content.decode()
    assert "launching needs the <code>experiments.add_execution</code> permission" in page
    assert teammate_client.post("/runs/new/", form_for(tiny())).status_code == 403
    assert Execution.objects.count() == 0


def test_an_outsider_is_sent_to_log_in(outsider):
    for response in (outsider.get("/runs/new/"), outsider.post("/runs/new/", form_for(tiny()))):
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert Execution.objects.count() == 0


def test_other_methods_are_405(owner_client):
    assert owner_client.put("/runs/new/").status_code == 405


def test_the_form_needs_the_csrf_token(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post("/runs/new/", form_for(tiny())).status_code == 403


def test_when_redis_is_down_the_form_says_so_and_nothing_is_queued(owner_client, settings):
    settings.RQ_QUEUES = {
        name: {"URL": "redis://127.0.0.1:1/0?socket_connect_timeout=1"} for name in ("default", "gpu")
    }
    page = owner_client.post("/runs/new/", form_for(tiny())).content.decode()
    assert "the job queue is unavailable" in page
    assert "python manage.py up" in page
    assert Execution.objects.count() == 0
