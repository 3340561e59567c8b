"""Curating runs in a real browser (Playwright driving Debian's Chromium against a live server).

A teammate with the edit and delete permissions writes notes on a run, tags two runs at once from
the experiment table (the confirmation says how many runs and bytes), deletes one from the table,
finds it in the trash and restores it. Every page visited is saved under test-artifacts/screenshots/
as curation-NN-<step>.png.
"""

import pytest
from django.contrib.auth.models import Permission
from django.template.defaultfilters import filesizeformat

from experiments.models import Execution
from tests.browser import Shots, logged_in
from tests.folders import make_run, permalink

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST = "06-16-31__08-04-2019"
SECOND = "06-39-51__10-04-2019"


def test_a_teammate_writes_notes_tags_two_runs_deletes_one_and_restores_it(live_server, browser, owner, root):
    from playwright.sync_api import expect

    owner.user_permissions.add(*Permission.objects.filter(codename__in=["change_execution", "delete_execution"]))
    first, second = make_run(root, FIRST, owner=owner), make_run(root, SECOND, owner=owner)
    page = logged_in(browser, live_server.url, owner)
    page.context.set_default_timeout(90_000)  # the machine is shared: a page may take long to answer under load
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    shot = Shots("curation")

    # --- notes on the run page, rendered as Markdown -------------------------------------------
    page.goto(permalink(first))
    expect(page.locator("#notes-body")).to_contain_text("No notes yet.")
    page.click("#edit-notes summary")
    page.fill("#id_title", "Baseline, 15 epochs")
    page.fill("#id_notes", "Lower **val_loss** than last week.\n\n- keep the scaler\n- try 32 units")
    shot(page, "edit-notes")
    page.click("#edit-notes button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Saved the notes of boston_housing/06-16-31__08-04-2019")
    expect(page.locator("#notes-body strong")).to_have_text("val_loss")
    expect(page.locator("#notes-body li")).to_have_count(2)
    expect(page.locator("h1 + p")).to_contain_text("Baseline, 15 epochs")
    shot(page, "notes-saved")

    # --- tag both runs from the experiment table ----------------------------------------------
    page.goto("/experiments/boston_housing/")
    tag_button = page.locator("button[data-bulk=tag]")
    expect(tag_button).to_be_disabled()
    page.check(f"input[name=runs][value='{first.pk}']")
    page.check(f"input[name=runs][value='{second.pk}']")
    expect(tag_button).to_be_enabled()
    shot(page, "table-selected")
    tag_button.click()
    size = filesizeformat(first.size_bytes + second.size_bytes)
    expect(page.locator("#bulk-question")).to_have_text(f"Tag 2 runs ({size})?")
    expect(page.locator("#bulk-runs tbody tr")).to_have_count(2)
    page.fill("#id_tags", "baseline, boston")
    shot(page, "tag-confirm")
    page.click("#bulk-confirm")
    page.wait_for_url(live_server.url + "/experiments/boston_housing/")
    expect(page.locator(".messages")).to_contain_text("Tagged 2 runs baseline, boston")
    assert [run.tags for run in Execution.objects.order_by("pk")] == [["baseline", "boston"]] * 2
    shot(page, "tagged")

    # --- delete one from the table: it leaves the table, its folder goes to the trash ----------
    page.check(f"input[name=runs][value='{second.pk}']")
    page.click("button[data-bulk=delete]")
    expect(page.locator("#bulk-question")).to_have_text(f"Delete 1 run ({filesizeformat(second.size_bytes)})?")
    shot(page, "delete-confirm")
    page.click("#bulk-confirm")
    expect(page.locator(".messages")).to_contain_text("Moved 1 run")
    assert not (root / "boston_housing" / "executions" / SECOND).exists()
    assert (root / ".trash" / "boston_housing" / "executions" / SECOND / "metrics.json").is_file()
    shot(page, "deleted")

    # --- the trash lists it with who deleted it; Restore puts it back --------------------------
    page.click("nav >> text=Trash")
    row = page.locator("#trash-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"boston_housing/{SECOND}")
    expect(row).to_contain_text("olivia")
    shot(page, "trash")
    row.locator("button:has-text('Restore')").click()
    page.wait_for_url(live_server.url + permalink(second))
    expect(page.locator(".messages")).to_contain_text("Restored boston_housing/06-39-51__10-04-2019")
    assert (root / "boston_housing" / "executions" / SECOND / "metrics.json").is_file()
    assert Execution.objects.get(pk=second.pk).status == "succeeded"
    expect(page.locator("#history")).to_contain_text("Restore")
    shot(page, "restored")

    page.goto("/experiments/boston_housing/")
    expect(page.locator(f"input[name=runs][value='{second.pk}']")).to_have_count(1)

    # --- the experiments page: disk usage per experiment, the root's total and free space ---------
    page.goto("/")
    expect(page.locator("#disk-line")).to_contain_text("free of")
    page.click("#disk-details summary")
    expect(page.locator("#disk-list li")).to_have_count(1)
    expect(page.locator("#disk-list li")).to_contain_text("boston_housing 2 runs")
    expect(page.locator("table")).to_have_count(1)  # the experiments' own table stays the page's only one
    shot(page, "disk")
    assert errors == []
