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
    document = {"name": NUL, "base": tiny(), "parameters": {"model.network[0].units": {"choice": [4, 8]}}, "method": "grid"}
    return document, ["name"]


# (method, path with {run}, body, where the NUL is inside it): every API operation that takes a JSON body.
BODIES = {
    "launch": ("post", "/api/executions", *_launch_body()),
    "launch, a key": ("post", "/api/executions", {"experiment": {NUL: 1}}, ["experiment", NUL]),
    "resume": ("post", "/api/executions/{run}/resume", {"epochs": NUL}, ["epochs"]),
    "fork": ("post", "/api/executions/{run}/fork", {"from": "last", "changes": {"experiment.name": NUL}},
             ["changes", "experiment.name"]),  # fmt: skip
    "curation": ("patch", "/api/executions/{run}", {"title": "t", "tags": ["ok", NUL]}, ["tags", 1]),
    "alerts": ("post", "/api/alerts", {"scope": "experiment", "kind": "failed", "channel": "in_app",
               "experiment": NUL}, ["experiment"]),  # fmt: skip
    "sweeps": ("post", "/api/sweeps", *_sweep_body()),
    "push begin": ("post", "/api/push/begin", {"experiment": NUL, "folder": "f", "files": []}, ["experiment"]),
    "push finish": ("post", "/api/push/finish", {"experiment": "e", "folder": NUL}, ["folder"]),
    "push sync": ("post", "/api/push/sync", {"runs": [{"experiment": "e", "folder": "f"}, {"experiment": NUL,
                  "folder": "f"}]}, ["runs", 1, "experiment"]),  # fmt: skip
    "push live": ("post", "/api/push/live", {"experiment": "e", "folder": "f", "epochs": [{"epoch": 0,
                  "metrics": {NUL: 0.5}}]}, ["epochs", 0, "metrics", NUL]),  # fmt: skip
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
