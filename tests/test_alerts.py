"""Alert rules: the threshold's parser, making rules from the pages and ``/api/alerts``, who sees and deletes them,
and a webhook outside the allowlist refused when the rule is saved. Delivery: tests/test_alerts_delivery.py."""

import json

import pytest
from django.contrib.auth.models import User

from alerts.models import Delivery, Rule
from alerts.rules import MAX_CONDITION, parse_condition
from audit.models import Entry
from experiments.models import Execution, Experiment, Status
from sweeps.models import Sweep
from tests.bounds import assert_quick
from tests.folders import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada():
    return User.objects.create_user("ada", email="ada@example.org", password="pw-ada-123")


@pytest.fixture
def tom():
    return User.objects.create_user("tom", password="pw-tom-123")


@pytest.fixture
def run():
    experiment = Experiment.objects.create(name="mnist")
    return Execution.objects.create(experiment=experiment, folder_name="07-00-00__06-12-2026", status=Status.RUNNING)


@pytest.fixture
def hooks_allowed(monkeypatch):
    monkeypatch.setenv("GYMNOS_WEBHOOK_HOSTS", "127.0.0.1:9")


def api_post(client, body):
    return client.post("/api/alerts", json.dumps(body), content_type="application/json")


# --- the threshold's parser ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("val_accuracy > 0.95", ("val_accuracy", ">", 0.95)),
        ("loss<=0.1", ("loss", "<=", 0.1)),
        ("  val_loss   <  1e-3 ", ("val_loss", "<", 0.001)),
        ("dense_1.mae >= -2", ("dense_1.mae", ">=", -2.0)),
    ],
)
def test_it_reads_a_condition(text, parsed):
    assert parse_condition(text) == parsed


@pytest.mark.parametrize(
    "text, said",
    [
        ("val_accuracy", "has no comparison; write it as <metric> <operator> <number>"),
        ("val_accuracy = 0.9", "has no comparison"),
        ("> 0.9", "a metric name cannot be empty"),
        ("val acc > 1", "has a character other than letters"),
        ("<img src=x> > 1", "a metric name cannot be empty"),
        ("loss > lots", "'lots' after > is not a number"),
        ("loss > nan", "the threshold must be a finite number"),
        ("loss >> 1", "'> 1' after > is not a number"),
        ("a" * (MAX_CONDITION + 1), f"at most {MAX_CONDITION}"),
    ],
)
def test_it_says_what_is_wrong_with_a_condition(text, said):
    with pytest.raises(ValueError) as caught:
        parse_condition(text)
    assert said in str(caught.value)


def _parse_quietly(text):
    try:
        parse_condition(text)
    except ValueError:
        pass


def test_the_parser_is_linear_on_its_worst_input():
    size = MAX_CONDITION
    assert_quick(
        _parse_quietly,
        {
            "a long name": "a" * (size - 4) + " > 1",
            "a long number": "a >" + "9" * (size - 3),
            "no operator": "a" * size,
        },
        benign="val_accuracy > 0.95",
    )


# --- making rules from the pages ------------------------------------------------------------------


def test_a_run_page_offers_the_alert_form(ada, run):
    page = login(ada).get(f"/executions/{run.pk}/", follow=True).content.decode()
    assert 'id="alert-form"' in page
    assert f'action="/alerts/runs/{run.pk}/"' in page


def test_subscribing_from_a_run_page_makes_the_rule_and_an_audit_entry(ada, run):
    client = login(ada)
    response = client.post(f"/alerts/runs/{run.pk}/", {"kind": "failed", "channel": "in_app"}, follow=True)
    rule = Rule.objects.get()
    assert (rule.owner, rule.scope, rule.execution, rule.kind) == (ada, "run", run, "failed")
    assert "Alert made: failed; run" in response.content.decode()
    entry = Entry.objects.get(action=Entry.Action.ALERT_CREATE)
    assert entry.actor == ada
    assert entry.execution == run
    assert "failed" in client.get("/alerts/").content.decode()


def test_subscribing_to_an_experiment_and_a_sweep(ada, run):
    client = login(ada)
    client.post(
        f"/alerts/experiments/{run.experiment.pk}/",
        {"kind": "threshold", "condition": "val_accuracy>0.95", "channel": "in_app"},
    )
    rule = Rule.objects.get()
    assert (rule.scope, rule.experiment, rule.metric, rule.operator, rule.threshold) == (
        "experiment",
        run.experiment,
        "val_accuracy",
        ">",
        0.95,
    )
    assert rule.condition == "val_accuracy > 0.95"
    sweep = Sweep.objects.create(
        name="lr search", method="random", trials_total=2, parallel=1, document={}, base_config={},
        metric="val_loss", which="best", direction="minimize", study_name="gymnos-sweep-alerts", seed=0,
    )  # fmt: skip
    client.post(f"/alerts/sweeps/{sweep.pk}/", {"kind": "stalled", "stall_minutes": "30", "channel": "in_app"})
    assert Rule.objects.get(scope="sweep").stall_minutes == 30
    client.post(f"/alerts/sweeps/{sweep.pk}/", {"kind": "new_best", "channel": "in_app"})
    made = api_post(client, {"scope": "sweep", "sweep": sweep.pk, "kind": "sweep_finished", "channel": "in_app"})
    assert made.status_code == 201, made.content
    api_post(client, {"scope": "mine", "kind": "worker_lost", "channel": "in_app"})
    kinds = set(Rule.objects.values_list("kind", flat=True))
    assert kinds == {"threshold", "stalled", "new_best", "sweep_finished", "worker_lost"}
    assert "a new best trial of a sweep" in client.get("/alerts/").content.decode()


def test_a_bad_condition_is_said_and_no_rule_made(ada, run):
    response = login(ada).post(
        f"/alerts/runs/{run.pk}/", {"kind": "threshold", "condition": "val_accuracy", "channel": "in_app"}, follow=True
    )
    assert "The alert was not made: condition: the condition &#x27;val_accuracy&#x27; has no comparison" in (
        response.content.decode()
    )
    assert not Rule.objects.exists()


def test_a_webhook_outside_the_allowlist_is_refused_when_the_rule_is_saved(ada, run, monkeypatch):
    monkeypatch.setenv("GYMNOS_WEBHOOK_HOSTS", "hooks.slack.com")
    response = login(ada).post(
        f"/alerts/runs/{run.pk}/",
        {"kind": "failed", "channel": "webhook", "webhook_url": "http://10.0.0.7/admin"},
        follow=True,
    )
    page = response.content.decode()
    assert "The alert was not made: webhook_url: cannot post to 10.0.0.7" in page
    assert "hosts listed in the GYMNOS_WEBHOOK_HOSTS environment variable (it lists: hooks.slack.com)" in page
    assert not Rule.objects.exists()


def test_webhooks_are_off_until_a_host_is_listed(ada, run, monkeypatch):
    monkeypatch.delenv("GYMNOS_WEBHOOK_HOSTS", raising=False)
    response = api_post(
        login(ada),
        {
            "scope": "run",
            "execution": run.pk,
            "kind": "failed",
            "channel": "webhook",
            "webhook_url": "http://127.0.0.1/",
        },
    )
    assert response.status_code == 400
    (problem,) = response.json()["errors"]
    assert problem["path"] == "webhook_url"
    assert "GYMNOS_WEBHOOK_HOSTS environment variable (it is empty)" in problem["message"]


def test_e_mail_needs_an_address_on_the_account(tom, run):
    response = api_post(login(tom), {"scope": "mine", "kind": "failed", "channel": "email"})
    assert response.status_code == 400
    assert "your account has no e-mail address" in response.json()["errors"][0]["message"]


def test_the_forms_need_a_login_and_a_post(ada, run, client):
    assert client.post(f"/alerts/runs/{run.pk}/", {"kind": "failed", "channel": "in_app"}).status_code == 302
    assert login(ada).get(f"/alerts/runs/{run.pk}/").status_code == 405
    assert not Rule.objects.exists()


def test_only_staff_make_rules_over_everyones_runs(ada, tom):
    assert (
        login(tom).post("/alerts/new/", {"scope": "everyone", "kind": "failed", "channel": "in_app"}).status_code == 403
    )
    assert api_post(login(tom), {"scope": "everyone", "kind": "failed", "channel": "in_app"}).status_code == 403
    ada.is_staff = True
    ada.save()
    login(ada).post("/alerts/new/", {"scope": "everyone", "kind": "failed", "channel": "in_app"})
    assert Rule.objects.get().scope == "everyone"


# --- the API ---------------------------------------------------------------------------------------


def test_the_api_makes_lists_and_deletes_my_rules_and_no_one_elses(ada, tom, run, hooks_allowed):
    mine, theirs = login(ada), login(tom)
    response = api_post(
        mine,
        {
            "scope": "experiment",
            "experiment": "mnist",
            "kind": "threshold",
            "condition": "val_accuracy > 0.95",
            "channel": "webhook",
            "webhook_url": "http://127.0.0.1:9/hook",
            "webhook_format": "slack",
        },
    )
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["experiment"] == "mnist"
    assert made["condition"] == "val_accuracy > 0.95"
    assert not made["failing"]
    Delivery.objects.create(
        rule_id=made["id"], execution=run, event="threshold", key=f"{made['id']}:{run.pk}:threshold", message="m"
    )

    assert [rule["id"] for rule in mine.get("/api/alerts").json()] == [made["id"]]
    assert mine.get("/api/alerts").json()[0]["deliveries"][0]["event"] == "threshold"
    assert theirs.get("/api/alerts").json() == []
    assert theirs.delete(f"/api/alerts/{made['id']}").status_code == 404
    assert Rule.objects.filter(pk=made["id"]).exists()
    assert "val_accuracy &gt; 0.95;" not in theirs.get("/alerts/").content.decode()
    assert "val_accuracy &gt; 0.95;" in mine.get("/alerts/").content.decode()
    assert theirs.post(f"/alerts/{made['id']}/delete/").status_code == 404

    assert mine.delete(f"/api/alerts/{made['id']}").status_code == 204
    assert not Rule.objects.exists()
    assert not Delivery.objects.exists()
    actions = list(Entry.objects.order_by("pk").values_list("action", "details"))
    assert actions == [("alert_create", {"via": "api"}), ("alert_delete", {"via": "api"})]


def test_the_api_says_every_problem_with_its_field(ada, run):
    client = login(ada)
    response = api_post(client, {"scope": "run", "kind": "soon", "channel": "pigeon", "colour": "red"})
    assert response.status_code == 400
    paths = sorted(problem["path"] for problem in response.json()["errors"])
    assert paths == ["channel", "colour", "kind"]
    response = api_post(client, {"scope": "run", "kind": "failed", "channel": "in_app"})
    assert response.json()["errors"] == [
        {"path": "execution", "message": "a rule with scope run says which: give execution"}
    ]
    assert (
        api_post(client, {"scope": "run", "execution": 999999, "kind": "failed", "channel": "in_app"}).status_code
        == 404
    )
    assert (
        api_post(client, {"scope": "experiment", "experiment": "nope", "kind": "nan", "channel": "in_app"}).status_code
        == 404
    )


def test_the_api_needs_a_login(client):
    assert client.get("/api/alerts").status_code == 401


def test_the_rules_page_deletes_a_rule(ada, run):
    client = login(ada)
    rule = Rule.objects.create(owner=ada, scope="run", execution=run, kind="failed", channel="in_app")
    page = client.get("/alerts/").content.decode()
    assert f'id="rule-{rule.pk}"' in page
    client.post(f"/alerts/{rule.pk}/delete/")
    assert not Rule.objects.exists()
    assert Entry.objects.filter(action=Entry.Action.ALERT_DELETE, actor=ada).exists()


def test_the_bell_counts_unread_in_app_alerts(ada, run):
    rule = Rule.objects.create(owner=ada, scope="mine", kind="failed", channel="in_app")
    Delivery.objects.create(rule=rule, execution=run, event="failed", key="k1", message="mnist failed", status="sent")
    page = login(ada).get("/").content.decode()
    assert 'id="alerts-unread">1</span>' in page


def test_a_rule_shows_its_last_five_deliveries_newest_first(ada, run):
    rule = Rule.objects.create(owner=ada, scope="mine", kind="nan", channel="in_app")
    other = Rule.objects.create(owner=ada, scope="mine", kind="failed", channel="in_app")
    for number in range(8):
        Delivery.objects.create(rule=rule, execution=run, event=f"e{number}", key=f"k{number}", message="m")
    Delivery.objects.create(rule=other, execution=run, event="failed", key="other", message="m")
    listed = {item["id"]: item for item in login(ada).get("/api/alerts").json()}
    assert [d["event"] for d in listed[rule.pk]["deliveries"]] == ["e7", "e6", "e5", "e4", "e3"]
    assert [d["event"] for d in listed[other.pk]["deliveries"]] == ["failed"]
    page = login(ada).get("/alerts/").content.decode()
    assert "e7 of" in page
    assert "e3 of" in page
    assert "e2 of" not in page
