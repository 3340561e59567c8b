"""Curating from the dashboard: the run page's notes, tags, archive, delete; the table's bulk actions; the trash.

Actors: ``curator`` holds experiments.change_execution and experiments.delete_execution; ``editor``
only the first; ``teammate`` neither (it may still read everything); ``outsider`` is not logged in.
"""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission, User
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone

from audit.models import Entry
from experiments.curation import sidecar, trash
from experiments.models import Execution, Experiment
from tests.folders import login, make_run, permalink

pytestmark = pytest.mark.django_db

NAME = "06-16-31__08-04-2019"
OTHER = "06-39-51__10-04-2019"


def user_with(name, *codenames):
    user = User.objects.create_user(name)  # no password: these clients log in with force_login
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def curator(db):
    return user_with("carla", "change_execution", "delete_execution")


@pytest.fixture
def curator_client(curator):
    return login(curator)


@pytest.fixture
def editor_client(db):
    return login(user_with("eddie", "change_execution"))


@pytest.fixture
def run(root, owner):
    return make_run(root, NAME, owner=owner)


@pytest.fixture
def other(root, owner):
    return make_run(root, OTHER, owner=owner)


def folder(root, name=NAME):
    return root / "boston_housing" / "executions" / name


# --- notes, title and tags on the run page -------------------------------------------------------


def test_notes_saved_on_the_run_page_are_shown_as_markdown_and_kept_in_the_folder(curator_client, run, root):
    response = curator_client.post(
        reverse("experiments:edit-notes", args=[run.pk]),
        {"title": "wider layers", "tags": "baseline, wide", "notes": "Lower **val_loss**\n\n- one"},
        REMOTE_ADDR="10.0.0.7",
    )
    assert response.status_code == 302
    assert response.url == permalink(run)
    page = curator_client.get(permalink(run)).content.decode()
    assert "<strong>val_loss</strong>" in page
    assert "<li>one</li>" in page
    assert "wider layers" in page
    assert ">baseline</span>" in page
    assert ">wide</span>" in page
    run.refresh_from_db()
    assert (run.title, run.tags, run.notes) == ("wider layers", ["baseline", "wide"], "Lower **val_loss**\n\n- one")
    kept = sidecar.read(folder(root))
    assert (kept.title, kept.tags, kept.notes) == ("wider layers", ["baseline", "wide"], "Lower **val_loss**\n\n- one")
    entry = Entry.objects.get()
    assert (entry.action, entry.actor_name, entry.address, entry.execution_id) == ("edit", "carla", "10.0.0.7", run.pk)


def test_notes_cannot_put_html_or_scripts_on_the_page(curator_client, run):
    notes = '<script>alert("x")</script> <img src=x onerror=alert(1)> [click](javascript:alert(1)) <b>bold</b>'
    curator_client.post(reverse("experiments:edit-notes", args=[run.pk]), {"title": "", "tags": "", "notes": notes})
    page = curator_client.get(permalink(run)).content.decode()
    body = page[page.index('id="notes-body"') : page.index("</div>", page.index('id="notes-body"'))]
    assert "<script" not in body
    assert "<img" not in body
    assert "<b>" not in body
    assert "javascript:" not in body.replace("[click](javascript:", "")
    assert "&lt;script&gt;" in body
    assert "&lt;b&gt;bold&lt;/b&gt;" in body
    assert 'href="javascript' not in page


def test_tags_are_added_and_removed_one_at_a_time(curator_client, run):
    curator_client.post(reverse("experiments:add-tag", args=[run.pk]), {"tag": "baseline"})
    curator_client.post(reverse("experiments:add-tag", args=[run.pk]), {"tag": "wide, deep"})
    curator_client.post(reverse("experiments:remove-tag", args=[run.pk]), {"tag": "wide"})
    run.refresh_from_db()
    assert run.tags == ["baseline", "deep"]
    assert Entry.objects.filter(action="edit").count() == 3


def test_a_bad_tag_is_refused_with_the_reason_and_changes_nothing(curator_client, run):
    response = curator_client.post(reverse("experiments:add-tag", args=[run.pk]), {"tag": "x" * 65}, follow=True)
    assert "No tag added: tag: the tag" in response.content.decode()
    assert "at most 64" in response.content.decode()
    run.refresh_from_db()
    assert run.tags == []
    assert Entry.objects.count() == 0


def test_a_tag_past_the_fiftieth_is_refused_with_the_reason(curator_client, run):
    full = [f"tag-{index}" for index in range(sidecar.MAX_TAGS)]
    curator_client.post(reverse("experiments:add-tag", args=[run.pk]), {"tag": ", ".join(full)})
    response = curator_client.post(reverse("experiments:add-tag", args=[run.pk]), {"tag": "one-more"}, follow=True)
    assert response.status_code == 200
    assert "a run may have at most 50" in response.content.decode()
    run.refresh_from_db()
    assert run.tags == full


def test_saving_unchanged_notes_writes_no_audit_entry(curator_client, run):
    data = {"title": run.title, "tags": "", "notes": ""}
    curator_client.post(reverse("experiments:edit-notes", args=[run.pk]), data)
    assert Entry.objects.count() == 0


def test_a_teammate_sees_the_notes_but_no_forms(teammate_client, curator_client, run):
    curator_client.post(reverse("experiments:edit-notes", args=[run.pk]), {"title": "", "tags": "", "notes": "hi"})
    page = teammate_client.get(permalink(run)).content.decode()
    assert "<p>hi</p>" in page
    for absent in ('id="edit-notes"', 'id="archive-run"', 'id="delete-menu"', "Trash</a>"):
        assert absent not in page


@pytest.mark.parametrize(
    "name, data",
    [
        ("edit-notes", {"title": "x", "tags": "", "notes": "sneaky"}),
        ("add-tag", {"tag": "sneaky"}),
        ("remove-tag", {"tag": "x"}),
        ("archive", {}),
        ("unarchive", {}),
    ],
)
def test_editing_without_the_change_permission_is_403_and_changes_nothing(teammate_client, run, root, name, data):
    before = sidecar.read(folder(root))
    response = teammate_client.post(reverse(f"experiments:{name}", args=[run.pk]), data)
    assert response.status_code == 403
    run.refresh_from_db()
    assert (run.notes, run.tags, run.archived, run.title) == ("", [], False, "Boston Housing")
    assert sidecar.read(folder(root)) == before
    assert not (folder(root) / "curation.json").exists()
    # Nothing was done; the refused attempt on a run that exists is audited (issue #26).
    assert list(Entry.objects.values_list("action", "execution")) == [("denied", run.pk)]


@pytest.mark.parametrize("name", ["delete", "restore"])
def test_deleting_or_restoring_without_the_delete_permission_is_403_and_changes_nothing(editor_client, run, root, name):
    response = editor_client.post(reverse(f"experiments:{name}", args=[run.pk]))
    assert response.status_code == 403
    assert folder(root).is_dir()
    assert Execution.objects.get(pk=run.pk).status == "succeeded"
    # Nothing was done; the refused attempt on a run that exists is audited (issue #26).
    assert list(Entry.objects.values_list("action", "execution")) == [("denied", run.pk)]


@pytest.mark.parametrize("name", ["edit-notes", "add-tag", "remove-tag", "archive", "unarchive", "delete", "restore"])
def test_the_actions_take_only_post_and_only_from_a_logged_in_user(curator_client, outsider, run, name):
    url = reverse(f"experiments:{name}", args=[run.pk])
    assert curator_client.get(url).status_code == 405
    response = outsider.post(url)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")
    assert Execution.objects.get(pk=run.pk).status == "succeeded"


# --- archive ---------------------------------------------------------------------------------------


def test_archive_hides_the_run_and_unarchive_shows_it(editor_client, run, other, root):
    response = editor_client.post(reverse("experiments:archive", args=[run.pk]), follow=True)
    assert "Archived boston_housing/06-16-31__08-04-2019" in response.content.decode()
    assert list(Execution.objects.visible()) == [other]
    assert list(Execution.objects.visible(archived=True).order_by("pk")) == [run, other]
    assert sidecar.read(folder(root)).archived is True
    page = editor_client.get(permalink(run)).content.decode()
    assert 'id="archived-badge"' in page
    assert 'id="unarchive-run"' in page

    editor_client.post(reverse("experiments:unarchive", args=[run.pk]))
    assert list(Execution.objects.visible().order_by("pk")) == [run, other]
    assert sidecar.read(folder(root)).archived is False
    assert list(Entry.objects.order_by("pk").values_list("action", flat=True)) == ["archive", "unarchive"]


def test_archiving_an_experiment_hides_its_runs_and_unarchiving_brings_back_only_those(editor_client, run, other):
    editor_client.post(reverse("experiments:archive", args=[other.pk]))  # archived on its own first
    editor_client.post(reverse("experiments:archive-experiment", args=["boston_housing"]))
    assert Experiment.objects.get().archived
    assert list(Execution.objects.visible()) == []
    editor_client.post(reverse("experiments:unarchive-experiment", args=["boston_housing"]))
    assert not Experiment.objects.get().archived
    assert list(Execution.objects.visible()) == [run]  # the one archived by itself stays archived
    assert list(Entry.objects.order_by("pk").values_list("action", "execution_id")) == [
        ("archive", other.pk),
        ("archive", run.pk),
        ("unarchive", run.pk),
    ]


def test_archiving_an_experiment_needs_the_change_permission(teammate_client, run):
    assert teammate_client.post(reverse("experiments:archive-experiment", args=["boston_housing"])).status_code == 403
    assert not Experiment.objects.get().archived
    assert not Execution.objects.get().archived


# --- delete and restore from the pages -------------------------------------------------------------


def test_deleting_from_the_run_page_moves_it_to_the_trash_page_and_restoring_brings_it_back(curator_client, run, root):
    response = curator_client.post(reverse("experiments:delete", args=[run.pk]), follow=True)
    assert response.redirect_chain[-1][0] == "/experiments/boston_housing/"
    assert "Moved boston_housing/06-16-31__08-04-2019" in response.content.decode()
    assert not folder(root).exists()

    page = curator_client.get(reverse("experiments:trash")).content.decode()
    assert "boston_housing/06-16-31__08-04-2019" in page
    assert "carla" in page
    assert "Restore" in page
    run_page = curator_client.get(permalink(run)).content.decode()
    assert 'id="in-trash"' in run_page
    assert 'id="restore-run"' in run_page

    response = curator_client.post(reverse("experiments:restore", args=[run.pk]), follow=True)
    assert response.redirect_chain[-1][0] == permalink(run)
    assert folder(root).is_dir()
    assert Execution.objects.get(pk=run.pk).status == "succeeded"
    assert "The trash is empty" in curator_client.get(reverse("experiments:trash")).content.decode()


def test_a_running_run_cannot_be_deleted_from_its_page(curator_client, run, root):
    Execution.objects.filter(pk=run.pk).update(status="running")
    assert 'id="delete-menu"' not in curator_client.get(permalink(run)).content.decode()
    response = curator_client.post(reverse("experiments:delete", args=[run.pk]), follow=True)
    assert "Not deleted: boston_housing/06-16-31__08-04-2019 is running; cancel it before deleting it" in (
        response.content.decode()
    )
    assert folder(root).is_dir()
    assert Execution.objects.get(pk=run.pk).status == "running"


def test_the_trash_page_lists_trashed_folders_the_index_no_longer_knows(curator_client, run, root):
    trash.delete(run)
    Execution.objects.all().delete()  # the index was rebuilt since
    page = curator_client.get(reverse("experiments:trash")).content.decode()
    assert "The trash is empty" in page  # no run to restore
    assert 'id="trash-unindexed"' in page
    assert f".trash/boston_housing/executions/{NAME}" in page
    assert "ago" in page.split('id="trash-unindexed"')[1]  # its manifest says when it was deleted

    curator_client.post(reverse("experiments:empty-trash"), {"older_than": 0})
    assert 'id="trash-unindexed"' not in curator_client.get(reverse("experiments:trash")).content.decode()


def test_the_trash_link_and_page_buttons_are_for_those_with_the_delete_permission(curator_client, teammate_client, run):
    assert "Trash</a>" in curator_client.get("/").content.decode()
    assert "Trash</a>" not in teammate_client.get("/").content.decode()
    curator_client.post(reverse("experiments:delete", args=[run.pk]))
    page = teammate_client.get(reverse("experiments:trash")).content.decode()
    assert "boston_housing/06-16-31__08-04-2019" in page
    assert "Restore</button>" not in page
    assert 'id="empty-trash"' not in page


def test_emptying_the_trash_from_its_page_removes_what_is_old_enough(curator_client, teammate_client, run, other):
    curator_client.post(reverse("experiments:delete", args=[run.pk]))
    curator_client.post(reverse("experiments:delete", args=[other.pk]))
    Execution.objects.filter(pk=run.pk).update(deleted_at=timezone.now() - dt.timedelta(days=31))
    assert teammate_client.post(reverse("experiments:empty-trash"), {"older_than": 0}).status_code == 403
    assert Execution.objects.count() == 2
    response = curator_client.post(reverse("experiments:empty-trash"), {"older_than": 30}, follow=True)
    assert "Removed for good 1 run deleted 30 or more days ago" in response.content.decode()
    assert list(Execution.objects.values_list("pk", flat=True)) == [other.pk]


# --- bulk actions from the experiment table ------------------------------------------------------


def bulk_url(action, *runs, **extra):
    query = "&".join(
        [f"action={action}", "runs=" + ",".join(str(r.pk) for r in runs)]
        + [f"{key}={value}" for key, value in extra.items()]
    )
    return reverse("experiments:bulk") + "?" + query


def test_the_table_offers_bulk_actions_to_those_allowed(curator_client, teammate_client, run, other):
    page = curator_client.get("/experiments/boston_housing/").content.decode()
    for action in ("tag", "untag", "archive", "unarchive", "delete"):
        assert f'data-bulk="{action}"' in page
    assert 'id="archive-experiment"' in page
    assert 'data-bulk="tag"' not in teammate_client.get("/experiments/boston_housing/").content.decode()


def test_a_bulk_action_first_asks_saying_how_many_runs_and_bytes(curator_client, run, other):
    size = run.size_bytes + other.size_bytes
    page = curator_client.get(bulk_url("delete", run, other)).content.decode()
    assert f"Delete 2 runs ({filesizeformat(size)})?" in page
    assert NAME in page
    assert OTHER in page
    assert Execution.objects.filter(status="deleted").count() == 0  # asking changed nothing


def test_bulk_tag_and_untag_change_every_selected_run_with_one_entry_each(curator_client, run, other, root):
    curator_client.post(reverse("experiments:bulk"), {"action": "tag", "runs": f"{run.pk},{other.pk}", "tags": "a, b"})
    assert [e.tags for e in Execution.objects.order_by("pk")] == [["a", "b"], ["a", "b"]]
    assert sidecar.read(folder(root, OTHER)).tags == ["a", "b"]
    curator_client.post(reverse("experiments:bulk"), {"action": "untag", "runs": f"{run.pk}", "tags": "a"})
    assert [e.tags for e in Execution.objects.order_by("pk")] == [["b"], ["a", "b"]]
    assert Entry.objects.filter(action="edit").count() == 3


def test_bulk_archive_and_delete_go_back_to_the_table_with_what_was_done(curator_client, run, other, root):
    response = curator_client.post(
        reverse("experiments:bulk"),
        {"action": "archive", "runs": f"{run.pk}", "next": "/experiments/boston_housing/?sort=val_loss"},
    )
    assert response.url == "/experiments/boston_housing/?sort=val_loss"
    assert Execution.objects.get(pk=run.pk).archived
    Execution.objects.filter(pk=other.pk).update(status="running")
    response = curator_client.post(
        reverse("experiments:bulk"), {"action": "delete", "runs": f"{run.pk},{other.pk}"}, follow=True
    )
    text = response.content.decode()
    assert "Moved 1 run (" in text
    assert "1 left as they were:" in text
    assert "is running; cancel it" in text
    assert not folder(root).exists()
    assert folder(root, OTHER).is_dir()


def test_bulk_actions_check_the_permission_of_each_action(editor_client, teammate_client, run):
    assert editor_client.get(bulk_url("delete", run)).status_code == 403
    assert editor_client.post(reverse("experiments:bulk"), {"action": "delete", "runs": str(run.pk)}).status_code == 403
    assert (
        teammate_client.post(
            reverse("experiments:bulk"), {"action": "tag", "runs": str(run.pk), "tags": "x"}
        ).status_code
        == 403
    )
    assert Execution.objects.get(pk=run.pk).status == "succeeded"
    assert Execution.objects.get(pk=run.pk).tags == []


@pytest.mark.parametrize(
    "data, message",
    [
        ({"action": "tag", "runs": "1,x"}, "&#x27;x&#x27; is not an execution id"),
        ({"action": "explode", "runs": "1"}, "Select a valid choice"),
        ({"action": "tag", "runs": "1", "tags": ""}, "Give at least one tag"),
    ],
)
def test_bad_bulk_input_is_refused_with_the_reason(curator_client, run, data, message):
    response = curator_client.post(reverse("experiments:bulk"), data, follow=True)
    assert "Nothing done" in response.content.decode()
    assert message in response.content.decode()


# --- history and disk ------------------------------------------------------------------------------


def test_the_run_page_shows_its_own_history(curator_client, run, other):
    curator_client.post(reverse("experiments:add-tag", args=[run.pk]), {"tag": "baseline"}, REMOTE_ADDR="10.9.8.7")
    curator_client.post(reverse("experiments:archive", args=[run.pk]))
    curator_client.post(reverse("experiments:archive", args=[other.pk]))  # another run's: not in this history
    page = curator_client.get(permalink(run)).content.decode()
    history = page[page.index('id="history"') :]
    assert history.count("<tr>") == 3  # the header and two entries
    assert "tags: none → baseline" in history
    assert "10.9.8.7" in history
    assert "carla" in history
    assert history.index("Archive") < history.index("Edit")  # newest first


def test_the_disk_figures_hold_each_experiments_total_the_trash_and_free_space(curator_client, root, owner, run):
    make_run(root, "07-00-00__10-04-2019", dataset="iris")
    trashed = make_run(root, OTHER)
    curator_client.post(reverse("experiments:delete", args=[trashed.pk]))
    assert 'id="disk"' in curator_client.get("/").content.decode()
    data = curator_client.get(reverse("experiments:disk-usage")).json()
    sizes = {row["name"]: row["bytes"] for row in data["experiments"]}
    iris = Execution.objects.get(experiment__name="iris")
    assert sizes == {"boston_housing": run.size_bytes, "iris": iris.size_bytes}
    assert data["trash"] == {"runs": 1, "bytes": trashed.size_bytes}
    assert data["root_bytes"] == run.size_bytes + iris.size_bytes + trashed.size_bytes
    assert data["checkpoint_bytes"] == run.checkpoint_bytes + iris.checkpoint_bytes > 0
    assert 0 < data["filesystem"]["free"] <= data["filesystem"]["total"]
