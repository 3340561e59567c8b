"""Each curation action writes exactly one audit entry per run it changed, saying who, what and from where."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse

from audit.models import Entry
from experiments.models import Execution
from tests.folders import login, make_run

pytestmark = pytest.mark.django_db

NAME = "06-16-31__08-04-2019"
OTHER = "06-39-51__10-04-2019"


@pytest.fixture
def curator_client(owner):
    owner.user_permissions.add(*Permission.objects.filter(codename__in=["change_execution", "delete_execution"]))
    return login(owner)


def entries():
    return list(Entry.objects.order_by("pk").values_list("action", "actor_name", "address", "target"))


def test_every_curation_action_writes_one_entry(curator_client, root, capsys):
    run = make_run(root, NAME)
    other = make_run(root, OTHER)
    at = {"REMOTE_ADDR": "10.1.1.1"}
    curator_client.post(
        reverse("experiments:edit-notes", args=[run.pk]), {"title": "t", "tags": "", "notes": "n"}, **at
    )
    curator_client.patch(f"/api/executions/{run.pk}", {"tags": ["x"]}, content_type="application/json", **at)
    curator_client.post(reverse("experiments:archive", args=[run.pk]), **at)
    curator_client.post(f"/api/executions/{run.pk}/unarchive", **at)
    curator_client.post(
        reverse("experiments:bulk"), {"action": "tag", "runs": f"{run.pk},{other.pk}", "tags": "y"}, **at
    )
    curator_client.post(reverse("experiments:delete", args=[other.pk]), **at)
    curator_client.post(reverse("experiments:restore", args=[other.pk]), **at)
    curator_client.delete(f"/api/executions/{other.pk}", **at)
    call_command("prune_checkpoints", "--keep-best", "1")
    call_command("empty_trash", "--older-than", "0")
    first, second = f"execution {run.pk} (boston_housing/{NAME})", f"execution {other.pk} (boston_housing/{OTHER})"
    assert entries() == [
        ("edit", "olivia", "10.1.1.1", first),
        ("edit", "olivia", "10.1.1.1", first),
        ("archive", "olivia", "10.1.1.1", first),
        ("unarchive", "olivia", "10.1.1.1", first),
        ("edit", "olivia", "10.1.1.1", first),
        ("edit", "olivia", "10.1.1.1", second),
        ("delete", "olivia", "10.1.1.1", second),
        ("restore", "olivia", "10.1.1.1", second),
        ("delete", "olivia", "10.1.1.1", second),
        ("prune_checkpoints", "", None, first),
        ("empty_trash", "", None, second),
    ]
    assert not Execution.objects.filter(pk=other.pk).exists()
    assert Entry.objects.filter(execution=run).count() == 6


def test_actions_that_change_nothing_write_nothing_and_a_refused_one_only_its_denial(
    curator_client, teammate_client, root
):
    run = make_run(root, NAME)
    curator_client.post(reverse("experiments:unarchive", args=[run.pk]))  # it was not archived
    curator_client.post(reverse("experiments:restore", args=[run.pk]))  # it is not in the trash
    teammate_client.post(reverse("experiments:archive", args=[run.pk]))  # no permission
    Execution.objects.filter(pk=run.pk).update(status="running")
    curator_client.post(reverse("experiments:delete", args=[run.pk]))  # running
    call_command("prune_checkpoints", "--dry-run")
    call_command("empty_trash", "--older-than", "0")  # nothing in the trash
    # The refused archive of a run that exists is audited as denied (issue 26); nothing else wrote an entry.
    assert entries() == [("denied", "tom", None, f"execution {run.pk} (boston_housing/{NAME})")]


def test_the_audit_log_keeps_an_entry_when_the_run_is_gone_for_good(curator_client, root):
    run = make_run(root, NAME)
    curator_client.post(reverse("experiments:delete", args=[run.pk]))
    deleted_at = Execution.objects.get(pk=run.pk).deleted_at
    assert deleted_at is not None
    Execution.objects.filter(pk=run.pk).update(deleted_at=deleted_at - dt.timedelta(days=40))
    call_command("empty_trash")
    entry = Entry.objects.get(action="delete")
    assert entry.execution_id is None
    assert entry.target == f"execution {run.pk} (boston_housing/{NAME})"
