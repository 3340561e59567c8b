"""The curation API: PATCH /api/executions/{id}; POST .../archive, .../unarchive, .../restore; DELETE."""

import pytest
from django.contrib.auth.models import Permission

from audit.models import Entry
from experiments.curation import sidecar
from experiments.models import ApiToken, Execution
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
def run(root):
    return make_run(root, NAME)


def patch(client, run, body, **extra):
    return client.patch(f"/api/executions/{run.pk}", body, content_type="application/json", **extra)


def test_patch_edits_title_notes_and_tags_and_answers_the_run(api, run, root):
    response = patch(api, run, {"title": "wide", "notes": "Better *val_loss*", "tags": ["baseline", " wide "]})
    assert response.status_code == 200
    body = response.json()
    assert (body["title"], body["notes"], body["tags"], body["archived"]) == (
        "wide",
        "Better *val_loss*",
        ["baseline", "wide"],
        False,
    )
    assert body["size_bytes"] == run.size_bytes
    assert body["url"] == f"/api/executions/{run.pk}"
    kept = sidecar.read(root / "boston_housing" / "executions" / NAME)
    assert (kept.title, kept.notes, kept.tags) == ("wide", "Better *val_loss*", ["baseline", "wide"])
    assert list(Entry.objects.values_list("action", "details__changed__title")) == [("edit", "wide")]


def test_patch_changes_only_the_keys_given(api, run):
    patch(api, run, {"notes": "first"})
    patch(api, run, {"tags": ["a"]})
    run.refresh_from_db()
    assert (run.notes, run.tags, run.title) == ("first", ["a"], "Boston Housing")


@pytest.mark.parametrize(
    "body, path, message",
    [
        ({"note": "x"}, "note", "unknown key; did you mean 'notes'?"),
        ({"tags": "baseline"}, "tags", "list"),
        ({"tags": ["a,b"]}, "tags", "has a comma"),
        ({"title": "x" * 300}, "title", "at most 255 characters"),
        ([1, 2], "", "must be a JSON object"),
    ],
)
def test_patch_answers_400_naming_what_is_wrong_and_where(api, run, body, path, message):
    response = patch(api, run, body)
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert errors[0]["path"] == path, errors
    assert message in errors[0]["message"], errors
    assert Entry.objects.count() == 0
    assert Execution.objects.get(pk=run.pk).notes == ""


def test_patch_bounds_the_body(api, run):
    nested = b'{"notes": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    response = api.patch(f"/api/executions/{run.pk}", nested, content_type="application/json")
    assert response.status_code == 400
    assert "nested 1001 deep" in response.json()["errors"][0]["message"]
    response = api.patch(f"/api/executions/{run.pk}", b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["errors"][0]["message"]


def test_archive_and_unarchive(api, run):
    response = api.post(f"/api/executions/{run.pk}/archive")
    assert response.status_code == 200
    assert response.json()["archived"] is True
    assert not Execution.objects.visible().exists()
    response = api.post(f"/api/executions/{run.pk}/unarchive")
    assert response.status_code == 200
    assert response.json()["archived"] is False
    assert Execution.objects.visible().get() == run


def test_delete_and_restore(api, run, root):
    response = api.delete(f"/api/executions/{run.pk}")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["deleted_by"]) == ("deleted", "olivia")
    assert (root / ".trash" / "boston_housing" / "executions" / NAME / "model.h5").is_file()
    assert api.delete(f"/api/executions/{run.pk}").status_code == 409
    response = api.post(f"/api/executions/{run.pk}/restore")
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert (root / "boston_housing" / "executions" / NAME / "model.h5").is_file()
    assert list(Entry.objects.order_by("pk").values_list("action", flat=True)) == ["delete", "restore"]


def test_a_running_run_cannot_be_deleted(api, run, root):
    Execution.objects.filter(pk=run.pk).update(status="running")
    response = api.delete(f"/api/executions/{run.pk}")
    assert response.status_code == 409
    assert "cancel it before deleting it" in response.json()["detail"]
    assert (root / "boston_housing" / "executions" / NAME).is_dir()


def test_a_queued_run_without_a_folder_cannot_be_edited(api, run):
    queued = Execution.objects.create(experiment=run.experiment, status="queued")
    response = patch(api, queued, {"notes": "x"})
    assert response.status_code == 409
    assert "has no folder yet" in response.json()["detail"]


def test_restore_refuses_when_the_path_is_taken(api, run, root):
    api.delete(f"/api/executions/{run.pk}")
    (root / "boston_housing" / "executions" / NAME).mkdir()
    response = api.post(f"/api/executions/{run.pk}/restore")
    assert response.status_code == 409
    assert "something already sits at" in response.json()["detail"]


@pytest.mark.parametrize(
    "method, suffix, permission",
    [
        ("patch", "", "experiments.change_execution"),
        ("post", "/archive", "experiments.change_execution"),
        ("post", "/unarchive", "experiments.change_execution"),
        ("delete", "", "experiments.delete_execution"),
        ("post", "/restore", "experiments.delete_execution"),
    ],
)
def test_each_operation_needs_its_permission(client, teammate, run, root, method, suffix, permission):
    client.force_login(teammate)
    response = getattr(client, method)(
        f"/api/executions/{run.pk}{suffix}", {"notes": "x"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert permission in response.json()["detail"]
    run.refresh_from_db()
    assert (run.status, run.notes, run.archived) == ("succeeded", "", False)
    assert (root / "boston_housing" / "executions" / NAME).is_dir()
    # Nothing was done; the refused attempt on a run that exists is audited (issue #26).
    assert list(Entry.objects.values_list("action", "execution")) == [("denied", run.pk)]


def test_a_bearer_token_works_and_no_credentials_is_401(client, curator, run):
    _, token = ApiToken.issue(curator)
    response = client.post(f"/api/executions/{run.pk}/archive", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert client.post(f"/api/executions/{run.pk}/unarchive").status_code == 401


def test_an_unknown_run_is_404(api):
    assert api.patch("/api/executions/999", {}, content_type="application/json").status_code == 404
    assert api.delete("/api/executions/999").status_code == 404


def test_the_operations_and_their_answers_are_in_the_openapi_document(api):
    schema = api.get("/api/openapi.json").json()
    item = schema["paths"]["/api/executions/{execution_id}"]
    assert {"get", "patch", "delete"} <= set(item)
    assert set(item["patch"]["responses"]) >= {"200", "400", "403", "404", "409"}
    body = item["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"title", "notes", "tags"}
    for suffix in ("archive", "unarchive", "restore"):
        assert "post" in schema["paths"][f"/api/executions/{{execution_id}}/{suffix}"]
