"""The permission matrix (issue #26): every route of the URLconf and every operation of /api/openapi.json, run
as each actor, each answer asserted.

The routes are read from the URLconf and the operations from the OpenAPI document, so a route added later
fails ``test_every_route_and_operation_has_an_expectation`` until it is given one here. The objects are of
project ``vision``: a run (titled with MARKER), its experiment ``iris``, a sweep from it, a share link and an
alert rule of its maintainer's. Actors:

    anonymous   not logged in                 other    maintainer of project nlp only
    viewer      viewer of vision              editor   editor of vision
    maintainer  maintainer of vision          staff    is_staff, a member of nothing
    visitor     holds a share link to a run of default (not logged in)
    token       the maintainer's API token, made read-only (the API; pages do not take tokens)

Answers: LOGIN (a page redirects to the login, the API answers 401), NOT_FOUND (404: the object is not
there for them), DENIED (403, saying the role needed), OK (past the permission check: any answer under
500 that is not 401, 403, 404 or 405), HIDDEN (200, and nothing of vision's run in the body), STREAMED (a
live stream past its permission check; 503 here, under WSGI).
The Django admin is left out: it has its own staff permissions (README, Security model).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from alerts.models import Rule
from experiments.models import ApiToken, Experiment, Project, PublishToken, ShareLink
from sweeps.models import Sweep, SweepShare
from tests.folders import login, make_run

# Transactional: the live streams read the database from threads of their own, which see only what is committed.
pytestmark = pytest.mark.django_db(transaction=True)

MARKER = "VISION-SECRET-RUN"
ACTORS = ("anonymous", "other", "viewer", "editor", "maintainer", "staff", "visitor", "token")
LOGIN, NOT_FOUND, DENIED, OK, HIDDEN = "login", "404", "403", "ok", "hidden"
# A live stream past its permission check: under the test client's WSGI handler it answers 503 at once, saying
# streams need the ASGI application (tests/test_live_stream.py reads them through uvicorn).
STREAMED = "streamed"


@dataclass(frozen=True)
class Expect:
    """How a route answers each actor: ``needs`` (a role of vision: its members' answers follow from it),
    or ``everyone`` (one answer for every logged-in actor), with exceptions in ``special``."""

    method: str = "get"
    needs: str | None = "viewer"
    everyone: str | None = None
    special: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    order: int = 0  # destructive ones last, so a deleted run does not change the answers after it

    def answer(self, actor: str, api: bool) -> str:
        if actor in self.special:
            return self.special[actor]
        if actor in ("anonymous", "visitor") or (actor == "token" and not api):
            return LOGIN
        if self.everyone is not None:
            return self.everyone
        if actor in ("other", "staff"):
            return NOT_FOUND
        if actor == "token":
            return OK if self.method in ("get", "head") else DENIED
        ranks = {"viewer": 1, "editor": 2, "maintainer": 3}
        return OK if ranks[actor] >= ranks[self.needs or "viewer"] else DENIED


READ = Expect()
EDIT = Expect("post", needs="editor", order=1)
DELETE = Expect("post", needs="maintainer", order=2)
# Lists of the user's projects' things: anyone logged in, a non-member sees nothing of vision.
LIST = Expect(everyone=OK, special={"other": HIDDEN, "staff": HIDDEN})
# A share link's pages: the link is the credential, for everyone alike; vision's run is not in them.
SHARED = Expect(everyone=HIDDEN, special=dict.fromkeys(ACTORS, HIDDEN))
# Launching lands in default, where these actors hold no global permission: 403 for each (a launch into
# another project is not there yet; README, Projects).
LAUNCH_DEFAULT = Expect("post", everyone=DENIED, order=1)
# The maintainer's own alert rule: nobody else's to see.
OWN_RULE = Expect("post", everyone=NOT_FOUND, special={"maintainer": OK, "anonymous": LOGIN, "visitor": LOGIN}, order=2)

PAGES: dict[str, Expect] = {
    "accounts/login/": Expect(everyone=OK, special={"anonymous": OK, "visitor": OK, "token": OK}),
    "accounts/logout/": Expect("post", special=dict.fromkeys(ACTORS, LOGIN), order=9),  # last: it ends the session
    "sweeps/": LIST,
    "sweeps/new/": Expect(everyone=OK),
    "sweeps/<int:sweep_id>/": READ,
    "sweeps/<int:sweep_id>/data.json": READ,
    "sweeps/<int:sweep_id>/events": Expect(special={"viewer": STREAMED, "editor": STREAMED, "maintainer": STREAMED}),
    "sweeps/<int:sweep_id>/cancel/": EDIT,
    "sweeps/<int:sweep_id>/share/": EDIT,
    "sweeps/shares/<int:share_id>/revoke/": Expect(
        "post", special={"viewer": DENIED, "editor": DENIED, "maintainer": OK}, order=2
    ),
    "sweeps/s/<str:token>/": SHARED,
    "sweeps/s/<str:token>/data.json": SHARED,
    "alerts/": LIST,
    "alerts/new/": Expect("post", everyone=OK, order=1),
    "alerts/read/": Expect("post", everyone=OK),
    "alerts/<int:rule_id>/delete/": OWN_RULE,
    "alerts/runs/<int:execution_id>/": Expect("post", needs="viewer", order=1),
    "alerts/experiments/<int:experiment_id>/": Expect("post", needs="viewer", order=1),
    "alerts/sweeps/<int:sweep_id>/": Expect("post", needs="viewer", order=1),
    "": LIST,
    "experiments/<str:experiment>/": READ,
    "experiments/<str:experiment>/executions/<str:folder>/": READ,
    "experiments/<str:experiment>/executions/<str:folder>/files/<path:path>": READ,
    "experiments/<str:experiment>/executions/<str:folder>/download.zip": READ,
    "executions/<int:execution_id>/": READ,
    "executions/<int:execution_id>/data.json": READ,
    "executions/<int:execution_id>/log.json": READ,
    "executions/<int:execution_id>/cancel/": EDIT,
    "executions/<int:execution_id>/share/": EDIT,
    "executions/<int:execution_id>/publish-token/": EDIT,
    "compare/": LIST,
    "compare/data.json": LIST,
    "compare/export.csv": LIST,
    # Other projects' runs are missing to a non-member: "could not share, runs ... do not exist".
    "compare/share/": Expect("post", needs="editor", special={"other": OK, "staff": OK}, order=1),
    "runs/new/": Expect(everyone=OK),
    "runs/remote/": LAUNCH_DEFAULT,
    "queue/": LIST,
    "queue/fragment/": LIST,
    "shares/": LIST,
    "shares/<int:share_id>/revoke/": Expect(
        "post", special={"viewer": DENIED, "editor": DENIED, "maintainer": OK}, order=2
    ),
    "s/<str:token>/": SHARED,
    "s/<str:token>/data.json": SHARED,
    "s/<str:token>/log.json": SHARED,
    "s/<str:token>/files/<path:path>": SHARED,
    "s/<str:token>/download.zip": SHARED,
    "s/<str:token>/export.csv": SHARED,
    "s/<str:token>/system.json": SHARED,
    "s/<str:token>/evaluation.json": SHARED,
    "publish/epoch/end/<str:token>/": Expect("post", special=dict.fromkeys(ACTORS, OK), order=1),
    # Projects: the list (a non-member sees default only), vision's members (read: its members), and granting
    # and revoking there (the maintainer; the empty form is refused, naming the missing holder, on the page).
    "projects/": LIST,
    "projects/<str:project>/": READ,
    "projects/<str:project>/grant/": Expect("post", needs="maintainer", order=1),
    "projects/<str:project>/revoke/": Expect("post", needs="maintainer", order=1),
    "experiments/<str:experiment>/explore.json": READ,
    "experiments/<str:experiment>/count.json": READ,
    "executions/<int:execution_id>/system.json": READ,
    "compare/system.json": LIST,
    "compare/evaluation.json": LIST,
    "executions/<int:execution_id>/evaluation.json": READ,
    "executions/<int:execution_id>/notes/": EDIT,
    "executions/<int:execution_id>/tags/add/": EDIT,
    "executions/<int:execution_id>/tags/remove/": EDIT,
    "executions/<int:execution_id>/archive/": EDIT,
    "executions/<int:execution_id>/unarchive/": EDIT,
    "executions/<int:execution_id>/delete/": Expect("post", needs="maintainer", order=3),
    "executions/<int:execution_id>/restore/": Expect("post", needs="maintainer", order=4),
    # The confirmation: a member of another project (an editor somewhere) is shown none of vision's runs.
    "runs/bulk/": Expect(needs="editor", special={"other": HIDDEN, "staff": DENIED}),
    "experiments/<str:experiment>/archive/": EDIT,
    "experiments/<str:experiment>/unarchive/": EDIT,
    "trash/": LIST,
    # Each maintainer empties the trash of the projects they maintain (other: nlp's); staff maintain none.
    "trash/empty/": Expect("post", needs="maintainer", special={"other": OK, "staff": DENIED}, order=1),
    "disk.json": LIST,
    "executions/<int:execution_id>/resume/": EDIT,
    # Live streams (the run's events filter every run's by visibility: tests/test_live_stream.py).
    "events/runs": Expect(everyone=STREAMED),
    "executions/<int:execution_id>/events": Expect(
        special={"viewer": STREAMED, "editor": STREAMED, "maintainer": STREAMED}
    ),
    "s/<str:token>/events": Expect(special=dict.fromkeys(ACTORS, STREAMED)),
    # A token's stream: a session is 401, as the API is; the read-only token of vision's maintainer reads it.
    "api/executions/<int:execution_id>/events": Expect(special={**dict.fromkeys(ACTORS, "401"), "token": STREAMED}),
}

API_READ = Expect()
# Pushing takes a token alone (a session is 401); the read-only token may not push.
PUSH = Expect("post", everyone=LOGIN, special={"token": DENIED}, order=1)
# The run has no steps.h5 and no evaluation.json: 404 for members too (its detail says which file is missing).
NOTHING_TO_READ = Expect(everyone=NOT_FOUND, special={"anonymous": LOGIN, "visitor": LOGIN})
API_EDIT = Expect("post", needs="editor", order=1)
OPERATIONS: dict[str, Expect] = {
    "POST /api/executions": LAUNCH_DEFAULT,
    "GET /api/executions": LIST,
    "GET /api/executions/{execution_id}": API_READ,
    "PATCH /api/executions/{execution_id}": Expect("patch", needs="editor", order=1),
    "DELETE /api/executions/{execution_id}": Expect("delete", needs="maintainer", order=3),
    "GET /api/executions/{execution_id}/metrics": API_READ,
    "GET /api/executions/{execution_id}/steps": API_READ,
    "GET /api/executions/{execution_id}/metrics/{name}/steps": NOTHING_TO_READ,
    "GET /api/executions/{execution_id}/log": API_READ,
    "POST /api/executions/{execution_id}/cancel": API_EDIT,
    "POST /api/executions/{execution_id}/archive": API_EDIT,
    "POST /api/executions/{execution_id}/unarchive": API_EDIT,
    "POST /api/executions/{execution_id}/restore": Expect("post", needs="maintainer", order=4),
    "GET /api/executions/{execution_id}/evaluation": NOTHING_TO_READ,
    "GET /api/executions/{execution_id}/system": API_READ,
    "POST /api/push/begin": PUSH,
    "PUT /api/push/chunk": Expect("put", everyone=LOGIN, special={"token": DENIED}, order=1),
    "POST /api/push/finish": PUSH,
    "POST /api/push/sync": PUSH,
    "POST /api/sweeps": LAUNCH_DEFAULT,
    "GET /api/sweeps/{sweep_id}": API_READ,
    "POST /api/sweeps/{sweep_id}/cancel": API_EDIT,
    "GET /api/alerts": LIST,
    "POST /api/alerts": Expect("post", everyone=OK, special={"token": DENIED}, order=1),
    "DELETE /api/alerts/{rule_id}": Expect(
        "delete", everyone=NOT_FOUND, special={"maintainer": OK, "token": DENIED}, order=2
    ),
    "GET /api/experiments": LIST,
    "GET /api/projects": LIST,
    "POST /api/executions/{execution_id}/resume": API_EDIT,
    "POST /api/executions/{execution_id}/fork": API_EDIT,
    "POST /api/push/live": PUSH,
}


def _walk(patterns: list[Any], prefix: str = "") -> list[str]:
    routes = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            routes += _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and not getattr(pattern.callback, "__module__", "").startswith("ninja"):
            routes.append(prefix + str(pattern.pattern))  # the API's operations: from /api/openapi.json
    return routes


# The API's own documents: /api/openapi.json lists every operation to anyone (README, Projects: not scoped yet).
API_DOCUMENTS = ("api/", "api/docs", "api/openapi.json")


def url_routes() -> list[str]:
    routes = _walk(get_resolver().url_patterns)
    return [route for route in routes if not route.startswith("admin/") and route not in API_DOCUMENTS]


def api_operations() -> list[str]:
    document = Client().get("/api/openapi.json").json()
    return [f"{method.upper()} {path}" for path, methods in document["paths"].items() for method in methods]


def test_every_route_and_operation_has_an_expectation():
    assert sorted(set(url_routes()) - set(PAGES)) == []
    assert sorted(set(api_operations()) - set(OPERATIONS)) == []
    assert sorted(set(PAGES) - set(url_routes())) == []  # none left over from a route since removed
    assert sorted(set(OPERATIONS) - set(api_operations())) == []


# --- the world the matrix runs in --------------------------------------------------------------------


@pytest.fixture
def world(root, real_queues):
    vision, nlp = Project.objects.create(name="vision"), Project.objects.create(name="nlp")
    people = {name: User.objects.create_user(name, password=f"pw-{name}-123") for name in ACTORS[1:5]}
    people["staff"] = User.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    for name, project, role in (("other", nlp, "maintainer"), ("viewer", vision, "viewer")):
        call_command("project", "grant", project.name, name, role)
    call_command("project", "grant", "vision", "editor", "editor")
    call_command("project", "grant", "vision", "maintainer", "maintainer")
    run = make_run(root, "06-16-31__08-04-2019", dataset="iris", title=MARKER)
    default_run = make_run(root, "07-00-00__09-04-2019", dataset="boston_housing")
    iris = run.experiment
    Experiment.objects.filter(pk=iris.pk).update(project=vision)
    owner = people["maintainer"]
    sweep = Sweep.objects.create(
        name=MARKER, method="random", trials_total=2, parallel=1, document={}, base_config={},
        base_execution=run, metric="val_loss", which="best", direction="minimize", study_name="matrix",
        seed=0, queue="default",
    )  # fmt: skip
    visitor_link = ShareLink.objects.create(kind=ShareLink.Kind.EXECUTION, execution=default_run, allow_downloads=True)
    comparison_link = ShareLink.objects.create(
        kind=ShareLink.Kind.COMPARISON, runs=[default_run.pk], allow_downloads=True
    )
    values = {
        "execution_id": run.pk,
        "experiment": "iris",
        "folder": run.folder_name,
        "path": "metrics.json",
        "token": visitor_link.token,
        "name": "loss",
        "sweep_id": sweep.pk,
        "experiment_id": iris.pk,
        "project": "vision",
        "share_id": ShareLink.objects.create(kind=ShareLink.Kind.EXECUTION, execution=run, created_by=owner).pk,
        "rule_id": Rule.objects.create(owner=owner, scope="run", execution=run, kind="failed", channel="in_app").pk,
    }
    special = {
        "sweeps/s/<str:token>/": SweepShare.objects.create(sweep=_default_sweep(default_run)).token,
        "publish/epoch/end/<str:token>/": PublishToken.objects.create(execution=default_run).token,
        "sweeps/shares/<int:share_id>/revoke/": SweepShare.objects.create(sweep=sweep, created_by=owner).pk,
    }
    special["sweeps/s/<str:token>/data.json"] = special["sweeps/s/<str:token>/"]
    special["s/<str:token>/export.csv"] = comparison_link.token
    # The page and the API each delete a rule of their own.
    special["api/alerts/{rule_id}"] = Rule.objects.create(
        owner=owner, scope="run", execution=run, kind="failed", channel="in_app"
    ).pk
    token, key = ApiToken.issue(owner)
    ApiToken.objects.filter(pk=token.pk).update(read_only=True)
    return {"people": people, "values": values, "special": special, "run": run, "key": key, "visitor": visitor_link}


def _default_sweep(run):
    return Sweep.objects.create(
        name="default sweep", method="random", trials_total=1, parallel=1, document={}, base_config={},
        base_execution=run, metric="val_loss", which="best", direction="minimize", study_name="matrix-d",
        seed=0, queue="default",
    )  # fmt: skip


def fill(route: str, world: dict[str, Any]) -> str:
    """The route with each parameter (Django's ``<int:x>``, OpenAPI's ``{x}``) given the world's value."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if route.lstrip("/") in world["special"] and name in ("token", "share_id", "rule_id"):
            return str(world["special"][route.lstrip("/")])
        assert name in world["values"], f"{route}: no value for the parameter {name}; add one to the world"
        return str(world["values"][name])

    return re.sub(r"<(?:\w+:)?(\w+)>|\{(\w+)\}", value, route)


def client_for(actor: str, world: dict[str, Any]) -> tuple[Client, dict[str, str]]:
    if actor in ("anonymous", "visitor"):
        return Client(), {}
    if actor == "token":
        return Client(), {"HTTP_AUTHORIZATION": f"Bearer {world['key']}"}
    return login(world["people"][actor]), {}


def query_for(route: str, world: dict[str, Any]) -> dict[str, Any]:
    run = world["values"]["execution_id"]
    if route.startswith("compare/") or route == "runs/bulk/":
        return {"runs": str(run), "action": "archive"}
    return {}


def outcome(response: Any, api: bool) -> str:
    status = response.status_code
    if status == 302 and "/accounts/login/" in response.get("Location", ""):
        return LOGIN
    if status == 401 and api:
        return LOGIN
    if status in (403, 404):
        return str(status)
    if status == 503 and b"Live events are unavailable" in body_of(response):
        return STREAMED
    assert status < 500, f"{status}: {response.content[:300]!r}"
    if status in (401, 405):
        return str(status)
    return OK


def body_of(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


@pytest.mark.parametrize("actor", ACTORS)
def test_the_matrix(actor, world):
    client, headers = client_for(actor, world)
    cells = [(route, expect, False) for route, expect in PAGES.items()]
    cells += [(operation, expect, True) for operation, expect in OPERATIONS.items()]
    wrong = []
    for route, expect, api in sorted(cells, key=lambda cell: cell[1].order):
        path = route.split(" ", 1)[1] if api else "/" + route
        url = fill(path, world)
        data = query_for(route, world)
        if api:
            kwargs: dict[str, Any] = {
                "content_type": "application/json",
                "data": {} if expect.method != "get" else data,
            }
        else:
            kwargs = {"data": data}
        response = getattr(client, expect.method)(url, **kwargs, **headers)
        wanted = expect.answer(actor, api)
        got = outcome(response, api)
        if wanted == HIDDEN:
            if got != OK or response.status_code != 200 or MARKER.encode() in body_of(response):
                wrong.append(
                    f"{expect.method.upper()} {url}: wanted 200 without vision's run, got {response.status_code}"
                )
            continue
        if got != wanted:
            wrong.append(f"{expect.method.upper()} {url}: wanted {wanted}, got {got} ({response.status_code})")
    assert wrong == [], "\n".join(wrong)
