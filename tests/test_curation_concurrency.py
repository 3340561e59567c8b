"""Teammates curating one run at the same moment (real threads, each with its own database connection,
real requests): nobody's change is lost, in the index or in the run's ``curation.json``."""

import threading

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit.models import Entry
from experiments.curation import sidecar
from experiments.models import Execution
from tests.folders import make_run

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "06-16-31__08-04-2019"
TEAM = 8


@pytest.fixture
def team(db):
    """Eight logged-in teammates who may edit runs."""
    clients = []
    for index in range(TEAM):
        user = User.objects.create_user(f"mate{index}")
        user.user_permissions.add(Permission.objects.get(codename="change_execution"))
        client = Client()
        client.force_login(user)
        clients.append(client)
    return clients


@pytest.fixture
def run(root):
    return make_run(root, NAME)


def at_once(clients, request):
    """Each client sends ``request(client, index)`` at the same moment; returns the answers' status codes."""
    barrier = threading.Barrier(len(clients))
    answers: list[object] = [None] * len(clients)

    def press(index):
        try:
            barrier.wait()
            answers[index] = request(clients[index], index).status_code
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            answers[index] = exc
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=press, args=(index,)) for index in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def folder_tags(root):
    return sidecar.read(root / "boston_housing" / "executions" / NAME).tags


def test_eight_teammates_adding_a_tag_at_once_keep_all_eight_tags(team, run, root):
    url = reverse("experiments:add-tag", args=[run.pk])
    answers = at_once(team, lambda client, index: client.post(url, {"tag": f"tag-{index}"}))
    assert answers == [302] * TEAM
    wanted = {f"tag-{index}" for index in range(TEAM)}
    assert set(Execution.objects.get(pk=run.pk).tags) == wanted
    assert set(folder_tags(root)) == wanted
    assert Entry.objects.filter(action=Entry.Action.EDIT).count() == TEAM


def test_removing_tags_at_once_removes_each_one(team, run, root):
    tags = [f"tag-{index}" for index in range(TEAM)] + ["kept"]
    team[0].patch(f"/api/executions/{run.pk}", {"tags": tags}, content_type="application/json")
    url = reverse("experiments:remove-tag", args=[run.pk])
    at_once(team, lambda client, index: client.post(url, {"tag": f"tag-{index}"}))
    assert Execution.objects.get(pk=run.pk).tags == ["kept"]
    assert folder_tags(root) == ["kept"]


def test_a_tag_added_while_another_teammate_archives_the_run_keeps_both(team, run, root):
    def act(client, index):
        if index % 2:
            return client.post(reverse("experiments:archive", args=[run.pk]))
        return client.post(reverse("experiments:add-tag", args=[run.pk]), {"tag": f"tag-{index}"})

    at_once(team, act)
    row = Execution.objects.get(pk=run.pk)
    assert set(row.tags) == {f"tag-{index}" for index in range(0, TEAM, 2)}
    assert row.archived is True
    kept = sidecar.read(root / "boston_housing" / "executions" / NAME)
    assert kept.tags is not None
    assert row.tags is not None
    assert set(kept.tags) == set(row.tags)
    assert kept.archived is True
