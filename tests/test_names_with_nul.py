"""A NUL byte in a URL's path or query is refused saying so (a page 400, the API 422 as for any parameter of the
wrong value), on both databases, before any view looks a name up:
PostgreSQL refuses a NUL in a text parameter, and a launch into ``?project=%00`` or the page of an experiment
named with one answered 500 there (found by the API's fuzzing on PostgreSQL). A name no project has is 404."""

import json

import pytest

from tests.helpers import tiny, token_for

pytestmark = [pytest.mark.django_db]


def _post(client, path, body, query, headers):
    return client.post(path, json.dumps(body), content_type="application/json", QUERY_STRING=query, **headers)


@pytest.mark.parametrize("query", ["project=a%00b", "project=%00", "project=a\x00b", "tag=x&project=%00"])
def test_a_launch_or_push_with_a_nul_in_its_query_is_422_saying_so(client, launcher, capsys, query):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token_for(launcher, capsys)}"}
    for path, body in (("/api/executions", tiny()), ("/api/push/begin", {})):
        answer = _post(client, path, body, query, headers)
        assert answer.status_code == 422, (path, answer.content)
        (problem,) = answer.json()["detail"]
        assert problem["loc"] == ["query"]
        assert "NUL byte" in problem["msg"]


@pytest.mark.parametrize("name", ["Vision Team", "a" * 63])
def test_a_launch_into_a_project_no_one_may_see_is_404_naming_it(client, launcher, capsys, name):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token_for(launcher, capsys)}"}
    answer = _post(client, "/api/executions", tiny(), f"project={name}", headers)
    assert answer.status_code == 404, answer.content
    assert "no project named" in answer.json()["detail"]


def test_a_page_of_an_experiment_project_or_run_named_with_a_nul_is_400(owner_client):
    for path in ("/experiments/a%00b/", "/projects/%00/", "/experiments/x/executions/a%00b/", "/compare/?runs=1%002"):
        answer = owner_client.get(path)
        assert answer.status_code == 400, path
        assert b"NUL byte" in answer.content
    assert owner_client.get("/experiments/no-such/").status_code == 404  # a name no experiment has: as before
