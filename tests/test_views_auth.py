"""Logging in and out, and the admin's links to the RQ views."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_login_page_is_open_and_logs_in_to_where_you_were_going(outsider, owner):
    page = outsider.get("/accounts/login/?next=/queue/").content.decode()
    assert "Log in to Gymnos" in page
    assert 'value="/queue/"' in page
    assert "csrfmiddlewaretoken" in page
    response = outsider.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia-123", "next": "/queue/"})
    assert response.status_code == 302
    assert response["Location"] == "/queue/"
    assert outsider.get("/queue/").status_code == 200


def test_a_wrong_password_says_so(outsider, owner):
    page = outsider.post("/accounts/login/", {"username": "olivia", "password": "nope"}).content.decode()
    assert "Please enter a correct username and password" in page


def test_logging_in_needs_the_csrf_token(owner):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia-123"}).status_code == 403


def test_logging_out_is_a_post_and_ends_the_session(owner_client):
    assert owner_client.get("/accounts/logout/").status_code == 405
    response = owner_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert owner_client.get("/").status_code == 302


def test_the_nav_links_every_page_and_admin_only_for_staff(teammate_client, teammate):
    page = teammate_client.get("/").content.decode()
    for href in ('href="/"', 'href="/queue/"', 'href="/runs/new/"', 'href="/shares/"'):
        assert href in page
    assert 'href="/admin/"' not in page
    teammate.is_staff = True
    teammate.save()
    assert 'href="/admin/"' in teammate_client.get("/").content.decode()


def test_the_admin_links_to_the_rq_queues_workers_and_failed_jobs():
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    page = client.get("/admin/").content.decode()
    links = ["/admin/rq/", "/admin/rq/workers/0/", "/admin/rq/queues/0/failed/", "/admin/rq/queues/1/failed/"]
    assert [link for link in links if f'href="{link}"' not in page] == []
