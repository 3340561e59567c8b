"""The projects page in a real browser (Playwright driving Debian's Chromium against a live server).

A maintainer of vision opens Projects from the navigation bar, grants a role to a user and to a group through
the form (CSRF, strict CSP: no console error), sees a refusal name the unknown user, and revokes a role.
Screenshots: test-artifacts/screenshots/projects-NN-<step>.png.
"""

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from experiments.models import Project, ProjectRole
from tests.browser import OWNER_PASSWORD, Shots, logged_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_maintainer_grants_and_revokes_roles_on_the_project_page(live_server, browser, owner):
    from playwright.sync_api import expect

    Project.objects.create(name="vision")
    call_command("project", "grant", "vision", owner.username, "maintainer")
    User.objects.create_user("bob", password=OWNER_PASSWORD)
    Group.objects.create(name="students")
    page = logged_in(browser, live_server.url, owner)
    page.context.set_default_timeout(90_000)  # the machine is shared
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    shot = Shots("projects")

    page.click("nav >> text=Projects")
    expect(page.locator("h1")).to_have_text("Projects")
    expect(page.locator("table")).to_contain_text("maintainer")
    shot(page, "list")
    page.click("a[href='/projects/vision/']")
    page.fill("#id_holder", "bob")
    page.select_option("#id_role", "editor")
    page.click("#grant-role button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("bob is now editor of vision")
    page.fill("#id_holder", "group:students")
    page.click("#grant-role button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("group:students is now viewer of vision")
    expect(page.locator("#members tbody tr")).to_have_count(3)
    page.fill("#id_holder", "nobody")
    page.click("#grant-role button[type=submit]")
    expect(page.locator(".messages .error")).to_contain_text("no user named 'nobody'")
    shot(page, "members")
    page.locator("#members tr", has_text="bob").locator("button", has_text="Revoke").click()
    expect(page.locator(".messages")).to_contain_text("bob is no longer editor of vision")
    expect(page.locator("#members tbody tr")).to_have_count(2)
    shot(page, "revoked")
    assert sorted(ProjectRole.objects.values_list("role", flat=True)) == ["maintainer", "viewer"]
    assert errors == []
