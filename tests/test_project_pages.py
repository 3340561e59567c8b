"""The projects page (issue #26): a user's projects with their role, a project's members, and a maintainer
granting and revoking roles there, audited exactly as ``manage.py project`` audits them."""

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from audit.models import Entry
from experiments.models import Project, ProjectRole
from tests.folders import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    Project.objects.create(name="vision")
    Project.objects.create(name="nlp")
    people = {name: User.objects.create_user(name, password=f"pw-{name}-123") for name in ("mia", "vic", "ned", "bob")}
    call_command("project", "grant", "vision", "mia", "maintainer")
    call_command("project", "grant", "vision", "vic", "viewer")
    call_command("project", "grant", "nlp", "ned", "maintainer")
    Group.objects.create(name="students")
    return people


def page(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def roles_of(project):
    return sorted((role.holder, role.role) for role in ProjectRole.objects.filter(project__name=project))


def test_the_list_shows_each_project_the_user_sees_with_their_role(team):
    body = page(login(team["vic"]), "/projects/")
    assert 'href="/projects/vision/"' in body
    assert ">viewer<" in body
    assert 'href="/projects/default/"' in body  # everyone logged in reads default
    assert "/projects/nlp/" not in body


def test_the_navigation_links_the_page_only_for_a_user_with_a_project(team):
    assert 'href="/projects/"' in page(login(team["vic"]), "/queue/")
    assert 'href="/projects/"' not in page(login(team["bob"]), "/queue/")  # no role anywhere
    assert page(login(team["bob"]), "/projects/").count('href="/projects/') == 1  # default, reachable by URL


def test_a_maintainer_grants_and_revokes_audited_as_the_command_does(team):
    client = login(team["mia"])
    body = page(client, "/projects/vision/")
    assert 'id="grant-role"' in body
    assert "Revoke" in body
    response = client.post("/projects/vision/grant/", {"holder": "bob", "role": "editor"}, follow=True)
    assert "bob is now editor of vision" in response.content.decode()
    client.post("/projects/vision/grant/", {"holder": "group:students", "role": "viewer"})
    assert roles_of("vision") == [("bob", "editor"), ("group:students", "viewer"), ("mia", "maintainer"),
                                  ("vic", "viewer")]  # fmt: skip
    body = page(client, "/projects/vision/")
    assert "students" in body
    assert ">group<" in body
    assert "bob" in body
    response = client.post("/projects/vision/revoke/", {"holder": "bob"}, follow=True)
    assert "bob is no longer editor of vision" in response.content.decode()
    assert ("bob", "editor") not in roles_of("vision")

    by_page = Entry.objects.filter(actor_name="mia").order_by("pk")
    assert [(e.action, e.target, e.details) for e in by_page] == [
        ("role_grant", "bob in project vision",
         {"project": "vision", "holder": "bob", "role": "editor", "before": ""}),
        ("role_grant", "group:students in project vision",
         {"project": "vision", "holder": "group:students", "role": "viewer", "before": ""}),
        ("role_revoke", "bob in project vision", {"project": "vision", "holder": "bob", "role": "editor"}),
    ]  # fmt: skip
    call_command("project", "grant", "vision", "bob", "editor")  # the command's entry: the same but for the actor
    by_command = Entry.objects.latest("pk")
    assert (by_command.action, by_command.target, by_command.details) == (by_page[0].action, by_page[0].target,
                                                                          by_page[0].details)  # fmt: skip


@pytest.mark.parametrize(
    "form, said",
    [
        ({"holder": "nobody", "role": "viewer"}, "no user named &#x27;nobody&#x27;"),
        ({"holder": "group:ghosts", "role": "viewer"}, "no group named &#x27;ghosts&#x27;"),
        ({"holder": "bob", "role": "owner"}, "no role &#x27;owner&#x27;; a role is one of: viewer, editor, maintainer"),
        ({"holder": "", "role": "viewer"}, "holder: name a user"),
        ({"holder": "b" * 500, "role": "viewer"}, "holder: at most 160 characters"),
    ],
)
def test_a_refused_grant_names_what_was_wrong(team, form, said):
    response = login(team["mia"]).post("/projects/vision/grant/", form, follow=True)
    body = response.content.decode()
    assert "Could not grant the role" in body
    assert said in body
    assert roles_of("vision") == [("mia", "maintainer"), ("vic", "viewer")]
    assert not Entry.objects.filter(actor_name="mia").exists()


def test_revoking_a_role_nobody_holds_says_so(team):
    response = login(team["mia"]).post("/projects/vision/revoke/", {"holder": "bob"}, follow=True)
    assert "bob has no role in project &#x27;vision&#x27;; nothing to revoke" in response.content.decode()


def test_a_viewer_sees_the_members_read_only(team):
    client = login(team["vic"])
    body = page(client, "/projects/vision/")
    assert "mia" in body
    assert ">maintainer<" in body
    assert 'id="grant-role"' not in body
    assert "Revoke" not in body
    refused = client.post("/projects/vision/grant/", {"holder": "vic", "role": "maintainer"})
    assert refused.status_code == 403
    # A page in the site's frame that says which role it takes, not a bare "403 Forbidden".
    assert b"You are not allowed to do this" in refused.content
    assert b"maintainer" in refused.content
    assert b"Log out" in refused.content
    assert client.post("/projects/vision/revoke/", {"holder": "mia"}).status_code == 403
    assert roles_of("vision") == [("mia", "maintainer"), ("vic", "viewer")]


def test_a_project_one_may_not_see_is_not_there(team):
    client = login(team["ned"])  # nlp's maintainer
    assert client.get("/projects/vision/").status_code == 404
    assert client.get("/projects/no-such/").status_code == 404
    assert client.post("/projects/vision/grant/", {"holder": "ned", "role": "maintainer"}).status_code == 404
    assert roles_of("vision") == [("mia", "maintainer"), ("vic", "viewer")]


def test_a_maintainer_who_revokes_themselves_lands_on_the_list(team):
    response = login(team["mia"]).post("/projects/vision/revoke/", {"holder": "mia"})
    assert response.status_code == 302
    assert response["Location"] == "/projects/"
