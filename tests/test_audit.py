"""The audit log: each thing a person does writes one entry saying who, what, when and from where."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from audit.models import Entry
from experiments.models import Execution, ShareLink
from tests.forms import form_for
from tests.helpers import tiny

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("real_queues")]


def entries():
    return list(Entry.objects.order_by("pk").values_list("action", "actor_name", "address", "target"))


def test_launching_and_cancelling_from_the_dashboard_each_write_one_entry(owner_client):
    owner_client.post("/runs/new/", form_for(tiny()), REMOTE_ADDR="10.1.2.3")
    execution = Execution.objects.get()
    owner_client.post(f"/executions/{execution.pk}/cancel/", REMOTE_ADDR="10.1.2.3")
    target = f"execution {execution.pk} (boston_housing/queued)"
    assert entries() == [("launch", "olivia", "10.1.2.3", target), ("cancel", "olivia", "10.1.2.3", target)]
    assert Entry.objects.filter(execution=execution).count() == 2


def test_the_api_writes_its_launches_and_cancels_too(client, owner):
    client.force_login(owner)
    launched = client.post("/api/executions", tiny(), content_type="application/json").json()
    client.post(f"/api/executions/{launched['id']}/cancel")
    assert [
        (action, details["via"]) for action, details in Entry.objects.order_by("pk").values_list("action", "details")
    ] == [
        ("launch", "api"),
        ("cancel", "api"),
    ]


def test_a_refused_action_writes_only_the_refusal_of_an_attempt_on_a_run(teammate_client, owner_client, trained):
    assert teammate_client.post(f"/executions/{trained.pk}/cancel/").status_code == 403  # no permission
    assert teammate_client.post("/runs/new/", form_for(tiny())).status_code == 403  # no run: nothing to audit
    owner_client.post(f"/executions/{trained.pk}/cancel/")  # allowed, but the run had ended: nothing cancelled
    assert entries() == [("denied", "tom", None, f"execution {trained.pk} (boston_housing/{trained.folder_name})")]


def test_share_links_made_and_revoked_are_recorded(owner_client, trained):
    owner_client.post(f"/executions/{trained.pk}/share/", {"expires_in": "7"})
    link = ShareLink.objects.get()
    owner_client.post(reverse("experiments:revoke-share", args=[link.pk]))
    owner_client.post(reverse("experiments:revoke-share", args=[link.pk]))  # already revoked: nothing new
    assert [(action, target) for action, _, _, target in entries()] == [
        ("share_create", f"share link {link.pk}"),
        ("share_revoke", f"share link {link.pk}"),
    ]


def test_publish_tokens_and_followed_runs_are_recorded(owner_client, trained):
    owner_client.post(f"/executions/{trained.pk}/publish-token/")
    owner_client.post("/runs/remote/", {"experiment": "elsewhere", "title": "laptop run", "epochs": 3})
    assert [action for action, *_ in entries()] == ["publish_token_create", "launch", "publish_token_create"]


def test_rotating_an_api_token_on_the_command_line_is_recorded(owner, capsys):
    call_command("api_token", "olivia")
    call_command("api_token", "olivia", "--rotate")
    assert [(action, actor, target) for action, actor, _, target in entries()] == [
        ("api_token_rotate", "", "API token of olivia"),
        ("api_token_rotate", "", "API token of olivia"),
    ]


def test_the_admin_lists_entries_and_allows_no_edit(admin_client, owner_client):
    owner_client.post("/runs/new/", form_for(tiny()))
    entry = Entry.objects.get()
    page = admin_client.get(reverse("admin:audit_entry_changelist"), {"action__exact": "launch"}).content.decode()
    assert "olivia" in page
    assert "launch" in page.lower()
    assert admin_client.get(reverse("admin:audit_entry_add")).status_code == 403
    change = admin_client.get(reverse("admin:audit_entry_change", args=[entry.pk])).content.decode()
    assert "olivia" in change
    assert 'name="action"' not in change
    assert 'name="target"' not in change
    assert admin_client.post(reverse("admin:audit_entry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert Entry.objects.filter(pk=entry.pk).exists()
