"""One execution, one shape: the detail, the search's items and curation's answers say a run the same way."""

import pytest
from django.contrib.auth.models import Permission

from experiments.models import Execution
from tests.folders import make_run

pytestmark = pytest.mark.django_db

NAME = "06-16-31__08-04-2019"


@pytest.fixture
def curator(owner):
    owner.user_permissions.add(*Permission.objects.filter(codename__in=["change_execution", "delete_execution"]))
    return owner


@pytest.fixture
def api(client, curator):
    client.force_login(curator)
    return client


@pytest.fixture
def run(root, curator):
    return make_run(root, NAME, owner=curator, epochs_total=50)


def detail(api, run):
    response = api.get(f"/api/executions/{run.pk}")
    assert response.status_code == 200
    return response.json()


def search_item(api, run):
    items = api.get("/api/executions", {"archived": "true"}).json()["items"]
    return next(item for item in items if item["id"] == run.pk)


def test_the_detail_shows_what_patch_changed(api, run):
    edited = api.patch(
        f"/api/executions/{run.pk}",
        {"title": "wide", "notes": "Better *val_loss*", "tags": ["baseline", "wide"]},
        content_type="application/json",
    )
    assert edited.status_code == 200
    api.post(f"/api/executions/{run.pk}/archive")
    shown = detail(api, run)
    assert shown["title"] == "wide"
    assert shown["notes"] == "Better *val_loss*"
    assert shown["tags"] == ["baseline", "wide"]
    assert shown["archived"] is True


def test_a_curation_answer_is_the_detail(api, run):
    answered = api.post(f"/api/executions/{run.pk}/archive").json()
    assert answered == detail(api, run)


def test_a_search_item_is_the_detail_without_its_large_keys(api, run):
    item, shown = search_item(api, run), detail(api, run)
    assert set(shown) - set(item) == {"notes", "config", "hardware"}
    assert item == {key: shown[key] for key in item}


def test_every_key_means_one_thing(api, run):
    shown = detail(api, run)
    assert shown["folder_name"] == NAME
    assert shown["experiment"] == "boston_housing"
    assert (shown["epochs"], shown["epochs_total"]) == (run.epochs, 50)
    assert shown["launched_by"] == "olivia"
    assert shown["url"] == f"/api/executions/{run.pk}"
    assert shown["html_url"] == f"/experiments/boston_housing/executions/{NAME}/"


def test_the_old_names_still_answer(api, run):
    for shown in (detail(api, run), search_item(api, run)):
        assert shown["name"] == shown["folder_name"] == NAME  # the search's items called the folder name
        assert shown["epoch"] == shown["epochs"] == run.epochs  # the detail called the epochs run epoch


def test_a_deleted_run_says_who_deleted_it_in_the_detail(api, run):
    api.delete(f"/api/executions/{run.pk}")
    shown = detail(api, run)
    assert (shown["status"], shown["deleted_by"]) == ("deleted", "olivia")
    deleted_at = Execution.objects.get(pk=run.pk).deleted_at
    assert deleted_at is not None
    assert shown["deleted_at"] == deleted_at.isoformat()


def test_the_openapi_document_names_one_shape(client):
    document = client.get("/api/openapi.json").json()
    schemas = document["components"]["schemas"]
    paths = document["paths"]

    def answer(path, method, status):
        return paths[path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]

    detail_ref = "#/components/schemas/ExecutionDetail"
    assert answer("/api/executions/{execution_id}", "get", "200") == detail_ref
    assert answer("/api/executions/{execution_id}", "patch", "200") == detail_ref
    assert answer("/api/executions/{execution_id}/archive", "post", "200") == detail_ref
    assert answer("/api/executions/{execution_id}/cancel", "post", "200") == detail_ref
    assert answer("/api/executions", "post", "201") == detail_ref
    assert schemas["ExecutionPage"]["properties"]["items"]["items"]["$ref"] == "#/components/schemas/ExecutionOut"
    assert schemas["ExecutionOut"]["properties"]["name"]["deprecated"] is True
    assert schemas["ExecutionOut"]["properties"]["epoch"]["deprecated"] is True
