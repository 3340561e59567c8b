"""Share links: made by a team member, read-only for whoever holds them, granting nothing else."""

import datetime as dt
import io
import zipfile

import pytest
from django.test import Client
from django.utils import timezone

from experiments.models import ShareLink
from tests.folders import make_run, permalink

pytestmark = pytest.mark.django_db


def share(client, execution, **form):
    response = client.post(f"/executions/{execution.pk}/share/", form)
    assert response.status_code == 302
    assert response["Location"] == permalink(execution)
    link = ShareLink.objects.latest("created_at")
    return link, f"/s/{link.token}/"


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_sharing_makes_an_unguessable_link_and_shows_it(owner_client, trained):
    link, url = share(owner_client, trained)
    assert len(link.token) >= 43
    assert link.kind == "execution"
    assert link.execution == trained
    assert not link.allow_downloads
    page = owner_client.get(permalink(trained)).content.decode()
    assert f"http://testserver{url}" in page
    assert "Revoke" in page
    assert len({share(owner_client, trained)[0].token for _ in range(5)}) == 5


def test_a_visitor_with_the_link_sees_the_run_read_only(trained, owner_client):
    _, url = share(owner_client, trained)
    visitor = Client()
    page = visitor.get(url).content.decode()
    assert "06-16-31__08-04-2019" in page
    assert "read-only shared view" in page
    assert "&quot;batch_size&quot;: 32" in page
    assert "Test CPU 9000" in page
    assert "Cancel run" not in page
    assert "Run again with changes" not in page
    assert "Share…" not in page
    assert 'href="/"' not in page
    assert "/experiments/boston_housing/" not in page
    assert "/admin/" not in page
    data = visitor.get(url + "data.json").json()
    assert data["charts"]["loss"]["val"]["y"][-1] == 8.0
    assert data["permalink"] is None
    assert "Downloads are not part of this share link" in data["files_html"]
    assert data["checkpoints"] == []
    assert "Saving model" in visitor.get(url + "log.json").json()["data"]


def test_without_the_download_tick_no_file_is_served(trained, owner_client):
    _, url = share(owner_client, trained)
    visitor = Client()
    assert visitor.get(url + "files/model.h5").status_code == 404
    assert visitor.get(url + "download.zip").status_code == 404


def test_with_the_download_tick_files_and_the_zip_are_served_inside_the_folder_only(trained, owner_client, tmp_path):
    _, url = share(owner_client, trained, allow_downloads="on")
    visitor = Client()
    assert body(visitor.get(url + "files/model.h5")) == b"\x89HDF fake model"
    data = visitor.get(url + "data.json").json()
    assert data["checkpoints"][0]["url"] == url + "files/callbacks/model_checkpoint/weights.05-27.07.h5"
    assert visitor.get(data["checkpoints"][0]["url"]).status_code == 200
    assert len(zipfile.ZipFile(io.BytesIO(body(visitor.get(url + "download.zip")))).namelist()) == 7
    (tmp_path / "secret.txt").write_text("no")
    for attempt in ("../../../../secret.txt", "%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt", str(tmp_path / "secret.txt")):
        assert visitor.get(url + "files/" + attempt).status_code == 404


def test_the_link_grants_nothing_else(trained, root, owner, owner_client):
    other = make_run(root, "07-00-00__11-04-2019", owner=owner)
    _, url = share(owner_client, trained, allow_downloads="on")
    visitor = Client()
    visitor.get(url)
    for denied in (
        "/",
        "/experiments/boston_housing/",
        permalink(trained),
        permalink(other),
        f"/executions/{other.pk}/data.json",
        f"/compare/?runs={trained.pk}",
        "/queue/",
        "/runs/new/",
        "/shares/",
        permalink(other) + "files/model.h5",
    ):
        response = visitor.get(denied)
        assert response.status_code == 302, denied
        assert response["Location"].startswith("/accounts/login/"), denied
    assert visitor.get(f"/api/executions/{trained.pk}").status_code == 401
    assert visitor.get("/admin/").status_code == 302
    assert visitor.get(url.replace("/s/", "/s/x")).status_code == 404
    assert visitor.get(url + "export.csv").status_code == 404  # an execution link is not a comparison


def test_revoking_closes_the_link_for_good(trained, owner_client):
    link, url = share(owner_client, trained)
    response = owner_client.post(f"/shares/{link.pk}/revoke/", {"next": permalink(trained)})
    assert response.status_code == 302
    assert response["Location"] == permalink(trained)
    link.refresh_from_db()
    assert link.revoked_at is not None
    for path in ("", "data.json", "log.json"):
        assert Client().get(url + path).status_code == 404
    owner_client.get(permalink(trained))  # shows (and so clears) the messages about it
    assert f"/s/{link.token}/" not in owner_client.get(permalink(trained)).content.decode()


def test_an_expired_link_opens_nothing(trained, owner_client):
    link, url = share(owner_client, trained, expires_in="7")
    assert dt.timedelta(days=6, hours=23) < link.expires_at - timezone.now() <= dt.timedelta(days=7)
    assert Client().get(url).status_code == 200
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert Client().get(url).status_code == 404


def test_only_its_maker_or_staff_may_revoke(trained, owner_client, teammate_client, teammate):
    link, url = share(owner_client, trained)
    assert teammate_client.post(f"/shares/{link.pk}/revoke/").status_code == 403
    link.refresh_from_db()
    assert link.revoked_at is None
    assert Client().get(url).status_code == 200
    teammate.is_staff = True
    teammate.save()
    assert teammate_client.post(f"/shares/{link.pk}/revoke/").status_code == 302
    assert Client().get(url).status_code == 404


def test_a_teammate_can_share_too_and_lists_their_links(trained, teammate_client):
    link, url = share(teammate_client, trained)
    page = teammate_client.get("/shares/").content.decode()
    assert url in page
    assert "boston_housing/06-16-31__08-04-2019" in page


def test_sharing_and_revoking_need_a_login_and_a_post(trained, outsider, owner_client):
    response = outsider.post(f"/executions/{trained.pk}/share/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert ShareLink.objects.count() == 0
    assert owner_client.get(f"/executions/{trained.pk}/share/").status_code == 405
    link, _ = share(owner_client, trained)
    assert owner_client.get(f"/shares/{link.pk}/revoke/").status_code == 405
    assert outsider.post(f"/shares/{link.pk}/revoke/").status_code == 302
    link.refresh_from_db()
    assert link.revoked_at is None


def test_share_forms_need_the_csrf_token(trained, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(f"/executions/{trained.pk}/share/").status_code == 403
    assert ShareLink.objects.count() == 0


def test_the_share_pages_do_not_accept_posts(trained, owner_client):
    _, url = share(owner_client, trained)
    assert Client().post(url).status_code == 405
    assert Client().post(url + "data.json").status_code == 405


# --- comparisons --------------------------------------------------------------------------------


@pytest.fixture
def pair(root, owner):
    return make_run(root, "06-16-31__08-04-2019", owner=owner), make_run(root, "06-39-51__10-04-2019", owner=owner)


def share_comparison(client, runs, **form):
    response = client.post("/compare/share/", {"runs": runs, **form})
    assert response.status_code == 302
    assert response["Location"] == f"/compare/?runs={runs}"
    link = ShareLink.objects.latest("created_at")
    return link, f"/s/{link.token}/"


def test_a_comparison_link_shows_the_comparison_only(pair, owner_client):
    a, b = pair
    link, url = share_comparison(owner_client, f"{a.pk},{b.pk}")
    assert link.kind == "comparison"
    assert link.runs == [a.pk, b.pk]
    visitor = Client()
    page = visitor.get(url).content.decode()
    assert "Comparing 2 runs" in page
    assert "boston_housing/06-39-51__10-04-2019" in page
    assert f"/executions/{a.pk}/" not in page
    assert "Export CSV" not in page
    data = visitor.get(url + "data.json").json()
    assert [run["id"] for run in data["runs"]] == [a.pk, b.pk]
    assert all(run["url"] is None for run in data["runs"])
    assert visitor.get(url + "export.csv").status_code == 404
    assert visitor.get(url + "log.json").status_code == 404
    assert visitor.get(url + "files/model.h5").status_code == 404
    assert visitor.get(f"/executions/{a.pk}/").status_code == 302


def test_a_comparison_link_with_downloads_exports_the_csv(pair, owner_client):
    a, b = pair
    _, url = share_comparison(owner_client, f"{a.pk},{b.pk}", allow_downloads="on")
    lines = body(Client().get(url + "export.csv")).decode().splitlines()
    assert lines[0].startswith("run_id,")
    assert len(lines) > 60


def test_sharing_a_comparison_of_runs_that_do_not_exist_is_refused(pair, owner_client):
    response = owner_client.post("/compare/share/", {"runs": "999998,999999"}, follow=True)
    assert "do not exist" in response.content.decode()
    assert ShareLink.objects.count() == 0
    response = owner_client.post("/compare/share/", {"runs": "1; DROP"}, follow=True)
    assert "is not an execution id" in response.content.decode()
    assert ShareLink.objects.count() == 0
