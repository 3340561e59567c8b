"""GET /api/executions (a query, any order, cursor pages) and GET /api/experiments; html_url everywhere."""

import html
import json

import pytest
from django.core.management import call_command
from django.test import Client

from experiments.models import Execution
from tests.helpers import tiny
from tests.test_search_query import runs  # noqa: F401  (the table of runs both databases must agree on)

pytestmark = pytest.mark.django_db


def names(response):
    assert response.status_code == 200, response.content
    return [item["name"] for item in response.json()["items"]]


def every_page(client, **params):
    """Follow next_cursor to the end; the names in order, and how many requests it took."""
    seen, pages, cursor = [], 0, None
    while True:
        response = client.get("/api/executions", {**params, **({"cursor": cursor} if cursor else {})})
        seen += names(response)
        pages += 1
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return seen, pages


def test_a_query_sorted_by_a_metric_comes_back_a_page_at_a_time(owner_client, runs):  # noqa: F811
    seen, pages = every_page(
        owner_client, experiment="boston", q="metrics.val_loss < 40", order_by="metrics.val_loss", limit=2
    )
    assert seen == ["r04", "r01", "r09", "r02", "r06"]
    assert pages == 3


@pytest.mark.parametrize(
    "order_by, order, expected",
    [
        ("params.training.batch_size", "desc", ["r04", "r03", "r02", "r09", "r01", "r06", "r05"]),
        ("metrics.val_loss", "asc", ["r04", "r01", "r09", "r02", "r06", "r03", "r05"]),
        ("started", None, ["r05", "r09", "r04", "r03", "r02", "r01", "r06"]),
        ("title", "asc", ["r01", "r03", "r02", "r04", "r09", "r06", "r05"]),
        ("size", "asc", ["r01", "r02", "r03", "r04", "r05", "r06", "r09"]),
    ],
)
def test_any_column_orders_the_pages_and_no_run_is_seen_twice_or_missed(owner_client, runs, order_by, order, expected):  # noqa: F811
    params = {"experiment": "boston", "order_by": order_by, "limit": 3, **({"order": order} if order else {})}
    seen, _ = every_page(owner_client, **params)
    assert seen == expected


def test_each_item_has_its_params_summary_status_and_both_urls(owner_client, runs):  # noqa: F811
    response = owner_client.get("/api/executions", {"experiment": "boston", "q": 'name = "r01"'})
    (item,) = response.json()["items"]
    run = runs["r01"]
    assert item["url"] == f"/api/executions/{run.pk}"
    assert item["html_url"] == "/experiments/boston/executions/r01/"
    assert item["params"]["training.batch_size"] == 32
    assert item["status"] == "succeeded"
    assert item["summary"]["val_loss"]["last"] == 10
    assert item["tags"] == ["baseline"]
    assert item["size_bytes"] == 1000
    assert owner_client.get(item["url"]).json()["html_url"] == item["html_url"]
    assert owner_client.get(item["html_url"]).status_code == 200


def test_the_next_link_continues_where_the_page_ended(owner_client, runs):  # noqa: F811
    first = owner_client.get("/api/executions", {"experiment": "boston", "limit": 4}).json()
    assert first["next"].startswith("/api/executions?")
    assert "cursor=" in first["next"]
    second = owner_client.get(first["next"]).json()
    assert [i["name"] for i in first["items"] + second["items"]] == ["r05", "r09", "r04", "r03", "r02", "r01", "r06"]
    assert second["next"] is None
    assert second["next_cursor"] is None


def test_archived_runs_only_when_asked_and_deleted_runs_never(owner_client, runs):  # noqa: F811
    assert "r07" not in every_page(owner_client, experiment="boston")[0]
    assert "r07" in every_page(owner_client, experiment="boston", archived="true")[0]
    assert names(owner_client.get("/api/executions", {"q": "archived"})) == ["r07"]
    assert "r08" not in every_page(owner_client, experiment="boston", archived="true")[0]


def test_without_an_experiment_it_searches_them_all(owner_client, runs):  # noqa: F811
    found = every_page(owner_client, q="params.training.batch_size = 64", order_by="name")[0]
    assert found == ["r02", "r03", "r10"]
    assert names(owner_client.get("/api/executions", {"status": "failed"})) == ["r03"]


def test_a_bad_query_is_a_400_with_the_pages_message_and_column(owner_client, runs):  # noqa: F811
    query = 'metrics.val_loss < "abc"'
    response = owner_client.get("/api/executions", {"experiment": "boston", "q": query})
    assert response.status_code == 400
    body = response.json()
    assert body == {"detail": body["detail"], "column": 20}
    assert body["detail"].startswith("col 20: metrics.val_loss is a number")
    page = html.unescape(owner_client.get("/experiments/boston/", {"q": query}).content.decode())
    assert body["detail"] in page
    response = owner_client.get("/api/executions", {"q": "metrics.val_loss < "})
    assert response.json() == {"detail": "col 19: expected a value after '<'", "column": 19}


@pytest.mark.parametrize(
    "params, status, words",
    [
        ({"experiment": "nope"}, 404, "no experiment named 'nope'"),
        ({"order_by": "staus"}, 400, "order_by: unknown column 'staus'"),
        ({"order_by": "tags.baseline"}, 400, "is a tag"),
        ({"cursor": "not-a-cursor"}, 400, "cursor: not a cursor this API gave"),
        ({"status": "done"}, 400, "status must be one of"),
        ({"limit": 0}, 422, None),
        ({"limit": 501}, 422, None),
        ({"limit": "ten"}, 422, None),
        ({"order": "sideways"}, 422, None),
        ({"archived": "perhaps"}, 422, None),
        ({"q": "a" * 1001}, 422, None),
    ],
)
def test_what_it_refuses_and_how(owner_client, runs, params, status, words):  # noqa: F811
    response = owner_client.get("/api/executions", params)
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    if words:
        assert words in response.json()["detail"]
    else:
        assert isinstance(response.json()["detail"], list)  # ninja's: each problem with its place


def test_a_cursor_belongs_to_its_order(owner_client, runs):  # noqa: F811
    first = owner_client.get("/api/executions", {"experiment": "boston", "order_by": "metrics.val_loss", "limit": 2})
    cursor = first.json()["next_cursor"]
    response = owner_client.get("/api/executions", {"experiment": "boston", "order_by": "started", "cursor": cursor})
    assert response.status_code == 400
    assert "another order_by" in response.json()["detail"]
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    assert owner_client.get("/api/executions", {"order_by": "metrics.val_loss", "cursor": tampered}).status_code == 400


def test_an_outsider_gets_401_and_a_token_gets_in(runs, owner, capsys):  # noqa: F811
    outsider = Client()
    for url in ("/api/executions", "/api/experiments"):
        response = outsider.get(url)
        assert response.status_code == 401
        assert response.json() == {"detail": "Unauthorized"}
    call_command("api_token", owner.username)
    token = capsys.readouterr().out.strip()
    response = outsider.get("/api/executions", {"experiment": "iris"}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert names(response) == ["r10"]


def test_the_experiments_with_their_runs_counted(owner_client, runs):  # noqa: F811
    response = owner_client.get("/api/experiments")
    assert response.status_code == 200
    boston, iris = response.json()
    assert boston == {
        "name": "boston",
        "project": "default",
        "archived": False,
        "runs": 7,
        "statuses": {"succeeded": 4, "failed": 1, "running": 1, "cancelled": 1},
        "url": "/api/executions?experiment=boston",
        "html_url": "/experiments/boston/",
    }
    assert iris["runs"] == 1
    assert names(owner_client.get(boston["url"]))[0] == "r05"
    archived = {e["name"]: e for e in owner_client.get("/api/experiments", {"archived": "true"}).json()}
    assert archived["boston"]["runs"] == 8


def test_every_status_is_documented_in_the_openapi_schema(client):
    schema = client.get("/api/openapi.json").json()
    assert set(schema["paths"]["/api/executions"]["get"]["responses"]) == {"200", "400", "401", "404", "422"}
    assert set(schema["paths"]["/api/experiments"]["get"]["responses"]) == {"200", "401", "422"}
    item = schema["components"]["schemas"]["ExecutionOut"]["properties"]
    assert {"url", "html_url", "params", "summary", "status"} <= set(item)
    assert "html_url" in schema["components"]["schemas"]["ExecutionDetail"]["properties"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("real_queues")
def test_launch_detail_and_cancel_answer_the_runs_page(client, owner, capsys):
    call_command("api_token", owner.username)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {capsys.readouterr().out.strip()}"}
    launched = client.post("/api/executions", json.dumps(tiny()), content_type="application/json", **headers).json()
    assert launched["html_url"] == f"/executions/{launched['id']}/"
    detail = client.get(launched["url"], **headers).json()
    assert detail["html_url"] == launched["html_url"]
    Execution.objects.filter(pk=launched["id"]).update(folder_name="06-16-31__08-04-2019")
    assert client.get(launched["url"], **headers).json()["html_url"] == (
        "/experiments/boston_housing/executions/06-16-31__08-04-2019/"
    )
    cancelled = client.post(f"{launched['url']}/cancel", **headers).json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["html_url"].endswith("/06-16-31__08-04-2019/")
