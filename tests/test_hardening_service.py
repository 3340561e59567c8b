"""The service under stress: Redis down, errors, login guessing, HTTPS settings; each a failure seen before."""

import os
import subprocess
import sys

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import path

from experiments.models import Execution, Experiment
from tests.helpers import ROOT

pytestmark = pytest.mark.django_db

DEAD_REDIS = {name: {"URL": "redis://127.0.0.1:1/0?socket_connect_timeout=1"} for name in ("default", "gpu")}


def boom(request):
    raise RuntimeError("a bug nobody has found yet")


urlpatterns = [path("boom/", boom)]
handler500 = "gymnos_web.errors.server_error"


@pytest.fixture
def staff_client():
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_superuser("root", "root@example.org", "pw-root-123"))
    return client


def test_cancel_with_redis_down_is_503_and_changes_nothing(owner_client, settings):
    settings.RQ_QUEUES = DEAD_REDIS
    experiment = Experiment.objects.create(name="boston_housing")
    queued = Execution.objects.create(experiment=experiment, status="queued", job_id="execution-1", queue="default")
    response = owner_client.post(f"/api/executions/{queued.pk}/cancel")
    assert response.status_code == 503
    assert "the job queue is unavailable" in response.json()["detail"]
    assert Execution.objects.get(pk=queued.pk).status == "queued"
    page = owner_client.post(f"/executions/{queued.pk}/cancel/", follow=True).content.decode()
    assert "Could not cancel" in page
    assert Execution.objects.get(pk=queued.pk).status == "queued"


def test_the_admins_rq_pages_say_redis_is_down(staff_client, settings):
    settings.RQ_QUEUES = DEAD_REDIS
    response = staff_client.get("/admin/rq/")
    assert response.status_code == 503
    assert "Redis is down" in response.content.decode()


def test_an_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"detail": "no such resource"}


def logged_since(settings, before):
    return (settings.LOG_DIR / "gymnos.log").read_text()[before:]


def log_size(settings):
    log_file = settings.LOG_DIR / "gymnos.log"
    return log_file.stat().st_size if log_file.exists() else 0


@pytest.mark.urls("tests.test_hardening_service")
def test_a_server_error_is_logged_with_its_traceback(staff_client, settings):
    before = log_size(settings)
    assert staff_client.get("/boom/").status_code == 500
    written = logged_since(settings, before)
    assert "Traceback (most recent call last)" in written
    assert "RuntimeError: a bug nobody has found yet" in written


def test_an_api_error_is_json_and_logged_with_its_traceback(staff_client, settings, monkeypatch):
    from experiments.models.lifecycle import ExecutionTransitions

    def broken(self, now=None):
        raise RuntimeError("the lost-worker check broke")

    monkeypatch.setattr(ExecutionTransitions, "mark_lost", broken)
    before = log_size(settings)
    response = staff_client.get("/api/executions/1")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; the server logged its traceback"}
    written = logged_since(settings, before)
    assert "Traceback (most recent call last)" in written
    assert "RuntimeError: the lost-worker check broke" in written


def test_ten_failed_logins_lock_that_user_from_that_address_and_an_admin_can_unlock():
    User.objects.create_user("mallory-target", password="the-right-password")
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(9):
        assert client.post("/accounts/login/", {"username": "mallory-target", "password": "guess"}).status_code == 200
    assert client.post("/accounts/login/", {"username": "mallory-target", "password": "guess"}).status_code == 429
    locked = client.post("/accounts/login/", {"username": "mallory-target", "password": "the-right-password"})
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    elsewhere = Client(REMOTE_ADDR="198.51.100.2")  # another address is not locked out
    assert (
        elsewhere.post("/accounts/login/", {"username": "mallory-target", "password": "the-right-password"}).status_code
        == 302
    )
    from axes.models import AccessAttempt

    AccessAttempt.objects.all().delete()  # what an admin's "delete" in Access attempts does
    unlocked = client.post("/accounts/login/", {"username": "mallory-target", "password": "the-right-password"})
    assert unlocked.status_code == 302


def test_check_deploy_is_clean_once_https_is_said(tmp_path):
    env = {**os.environ, "GYMNOS_HTTPS": "true", "DEBUG": "false", "GYMNOS_VAR_DIR": str(tmp_path)}
    env.pop("SECRET_KEY", None)  # the one generated and kept under var/
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
