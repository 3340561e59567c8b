"""What the API's parsing refuses before any operation reads it: a NUL character in a JSON body's string (a key or a
value, at any depth) is 422 naming where it was, and a parameter an operation takes once, given twice, is 422 naming
it. PostgreSQL refuses a NUL in text and in jsonb: such a body answered 500 there (launch, fork, sweeps, alerts,
push...). The forms and the RemoteMonitor receiver that parse JSON themselves refuse it too, saying so.
Run it on PostgreSQL too (``DATABASE_URL=postgres://...``): that run is the one that showed the 500s."""

import json

import pytest
from django.contrib.auth.models import Permission

from alerts.models import Rule
from audit.models import Entry
from experiments.models import Execution, Experiment
from sweeps.models import Sweep
from tests.folders import make_run
from tests.forms import form_for
from tests.helpers import tiny, token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("real_queues")]

NUL = "a\x00b"


@pytest.fixture
def maker(owner):
    """May launch, edit and delete (the owner, with the curation permissions too)."""
    owner.user_permissions.add(*Permission.objects.filter(codename__in=["change_execution", "delete_execution"]))
    return owner


@pytest.fixture
def headers(maker, capsys):
    return {"HTTP_AUTHORIZATION": f"Bearer {token_for(maker, capsys)}"}


@pytest.fixture
def run(root, maker):
    return make_run(root, "06-16-31__08-04-2019", owner=maker)


def _launch_body():
    config = tiny()
    config["experiment"]["description"] = NUL
    return config, ["experiment", "description"]


def _sweep_body():
    document = {
        "name": NUL,
        "base": tiny(),
        "parameters": {"model.network[0].units": {"choice": [4, 8]}},
        "method": "grid",
    }
    return document, ["name"]


# (method, path with {run}, body, where the NUL is inside it): every API operation that takes a JSON body.
BODIES = {
    "launch": ("post", "/api/executions", *_launch_body()),
    "launch, a key": ("post", "/api/executions", {"experiment": {NUL: 1}}, ["experiment", NUL]),
    "resume": ("post", "/api/executions/{run}/resume", {"epochs": NUL}, ["epochs"]),
    "fork": (
        "post",
        "/api/executions/{run}/fork",
        {"from": "last", "changes": {"experiment.name": NUL}},
        ["changes", "experiment.name"],
    ),
    "curation": ("patch", "/api/executions/{run}", {"title": "t", "tags": ["ok", NUL]}, ["tags", 1]),
    "alerts": (
        "post",
        "/api/alerts",
        {"scope": "experiment", "kind": "failed", "channel": "in_app", "experiment": NUL},
        ["experiment"],
    ),
    "sweeps": ("post", "/api/sweeps", *_sweep_body()),
    "push begin": ("post", "/api/push/begin", {"experiment": NUL, "folder": "f", "files": []}, ["experiment"]),
    "push finish": ("post", "/api/push/finish", {"experiment": "e", "folder": NUL}, ["folder"]),
    "push sync": (
        "post",
        "/api/push/sync",
        {"runs": [{"experiment": "e", "folder": "f"}, {"experiment": NUL, "folder": "f"}]},
        ["runs", 1, "experiment"],
    ),
    "push live": (
        "post",
        "/api/push/live",
        {"experiment": "e", "folder": "f", "epochs": [{"epoch": 0, "metrics": {NUL: 0.5}}]},
        ["epochs", 0, "metrics", NUL],
    ),
}


def _stored():
    """What a refused request must leave as it was."""
    return (
        list(Execution.objects.values_list("pk", "status", "title", "tags")),
        Experiment.objects.count(),
        Rule.objects.count(),
        Sweep.objects.count(),
        Entry.objects.count(),
    )


@pytest.mark.parametrize("case", BODIES)
def test_a_nul_in_any_string_of_a_body_is_422_naming_where_and_stores_nothing(client, headers, run, root, case):
    method, path, body, where = BODIES[case]
    before, files = _stored(), sorted(root.rglob("*"))
    answer = getattr(client, method)(
        path.format(run=run.pk), json.dumps(body), content_type="application/json", **headers
    )
    assert answer.status_code == 422, answer.content
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", *where]
    assert "NUL character" in problem["msg"]
    assert _stored() == before
    assert sorted(root.rglob("*")) == files


def test_a_nul_in_a_body_ninja_parses_keeps_the_bounds_words_when_it_is_not_json(client, headers):
    for raw, said in (("[" * 100, "nested 100 deep; at most 64"), ('{"a": 1', "not valid JSON")):
        answer = client.post("/api/push/finish", raw, content_type="application/json", **headers)
        assert answer.status_code == 400
        assert said in answer.json()["detail"]


def test_a_string_that_only_spells_a_nul_is_launched(client, headers):
    config = tiny()
    config["experiment"]["description"] = "\\u0000 is how JSON writes it"  # the six characters, no NUL
    answer = client.post("/api/executions", json.dumps(config), content_type="application/json", **headers)
    assert answer.status_code == 201, answer.content
    config = Execution.objects.get().config
    assert config is not None
    assert config["experiment"]["description"] == "\\u0000 is how JSON writes it"


# --- a parameter given twice ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, query, name",
    [
        ("get", "/api/executions", "project=&project=x", "project"),
        ("get", "/api/executions", "limit=5&q=a&limit=6&limit=7", "limit"),
        ("post", "/api/executions", "project=default&project=other", "project"),
        ("get", "/api/executions/{run}/metrics/loss/steps", "from=1&from=2", "from"),
        ("post", "/api/push/begin", "project=default&project=default", "project"),
    ],
)
def test_a_parameter_taken_once_given_twice_is_422_naming_it(client, headers, run, method, path, query, name):
    before = _stored()
    body = tiny() if path == "/api/executions" else {"experiment": "e", "folder": "f", "files": []}
    sent = {"data": json.dumps(body), "content_type": "application/json"} if method == "post" else {}
    answer = getattr(client, method)(path.format(run=run.pk), QUERY_STRING=query, **sent, **headers)
    assert answer.status_code == 422, answer.content
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["query", name]
    assert problem["msg"] == f"is given {query.count(name + '=')} times; it is taken once"
    assert _stored() == before


def test_each_parameter_once_still_works(client, headers, run):
    answer = client.get("/api/executions", {"project": "default", "limit": 5}, **headers)
    assert answer.status_code == 200, answer.content
    assert [item["id"] for item in answer.json()["items"]] == [run.pk]


def test_a_list_parameter_given_twice_stays_a_list(rf):
    from django.http import QueryDict

    from gymnos_web.api import api

    request = rf.get("/api/x", {"tag": ["a", "b"], "limit": "5"})
    assert isinstance(request.GET, QueryDict)
    assert api.parser.parse_querydict(request.GET, ["tag"], request) == {"tag": ["a", "b"], "limit": "5"}


# --- the pages that parse JSON themselves ----------------------------------------------------------


def test_the_run_forms_config_with_a_nul_is_shown_beside_it_and_nothing_is_launched(owner_client):
    config = tiny()
    config["experiment"]["description"] = NUL
    page = owner_client.post("/runs/new/", form_for(config))
    assert page.status_code == 200
    assert (
        "The config: the string holds a NUL character (\\u0000) at &#x27;experiment.description&#x27;"
        in page.content.decode()
    )
    assert Execution.objects.count() == 0


def test_a_remotemonitor_post_with_a_nul_is_a_400_saying_where(owner_client):
    owner_client.post("/runs/remote/", {"experiment": "notebook", "title": "Notebook run", "epochs": 3})
    execution = Execution.objects.get(experiment__name="notebook")
    url = f"/publish/epoch/end/{execution.publish_tokens.get().token}/"
    for post in (
        lambda: owner_client.post(url, {"data": json.dumps({"epoch": 0, NUL: 1.0})}),
        lambda: owner_client.post(url, json.dumps({"epoch": 0, "loss": NUL}), content_type="application/json"),
    ):
        answer = post()
        assert answer.status_code == 400
        assert "the epoch data: " in answer.json()["detail"]
        assert "holds a NUL character" in answer.json()["detail"]
    assert execution.histories.count() == 0


def test_a_pasted_sweep_document_with_a_nul_says_where_and_starts_nothing(owner_client, run):
    document = {"name": NUL, "base": run.pk, "parameters": {"training.batch_size": {"choice": [16, 32]}}}
    page = owner_client.post("/sweeps/new/", {"document": json.dumps({**document, "method": "grid"})})
    assert page.status_code == 200
    assert "The sweep document: the string holds a NUL character (\\u0000) at &#x27;name&#x27;" in page.content.decode()
    assert Sweep.objects.count() == 0
