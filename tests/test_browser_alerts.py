"""Alerts in a real browser (Playwright driving Debian's Chromium against a live server): a teammate opens "Alert
me…" on a run's page and makes a rule, a bad condition is said beside nothing made, the bell in the nav counts an
unread alert and goes quiet once it is read. No page runs into the Content-Security-Policy."""

import pytest

from alerts.models import Delivery, Rule
from tests.browser import Shots, logged_in
from tests.folders import make_run, permalink

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_teammate_subscribes_from_a_run_page_and_reads_the_alert_by_the_bell(live_server, browser, owner, root):
    from playwright.sync_api import expect

    run = make_run(root, "06-16-31__08-04-2019", owner=owner)
    page = logged_in(browser, live_server.url, owner)
    page.context.set_default_timeout(90_000)  # the machine is shared: a page may take long to answer under load
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    def csp_violation(message):
        if "Content Security Policy" in message.text:
            problems.append(message.text)

    page.on("console", csp_violation)
    shot = Shots("alerts")

    page.goto(permalink(run))
    expect(page.locator("#alerts-unread")).to_have_count(0)
    page.click("#alert-menu summary")
    page.select_option("#alert-form select[name=kind]", "threshold")
    page.fill("#alert-form input[name=condition]", "val_loss <")
    page.select_option("#alert-form select[name=channel]", "in_app")
    shot(page, "alert-form")
    page.click("#alert-save")
    expect(page.locator(".messages")).to_contain_text("The alert was not made: condition:")
    assert not Rule.objects.exists()

    page.click("#alert-menu summary")
    page.select_option("#alert-form select[name=kind]", "threshold")
    page.fill("#alert-form input[name=condition]", "val_loss < 25")
    page.select_option("#alert-form select[name=channel]", "in_app")
    page.click("#alert-save")
    expect(page.locator(".messages")).to_contain_text("Alert made: val_loss < 25; run")
    rule = Rule.objects.get()

    Delivery.objects.create(
        rule=rule, execution=run, event="threshold", key=f"{rule.pk}:{run.pk}:threshold",
        message="Gymnos: boston_housing/06-16-31__08-04-2019: val_loss = 20.1 at epoch 3 (< 25)", status="sent",
    )  # fmt: skip
    page.reload()
    expect(page.locator("#alerts-unread")).to_have_text("1")
    page.click("#alerts-bell")
    expect(page.locator("#inbox")).to_contain_text("val_loss = 20.1 at epoch 3 (< 25)")
    expect(page.locator(f"#rule-{rule.pk}")).to_contain_text(f"sent threshold of run {run.pk}")
    shot(page, "rules")
    page.click("#mark-read")
    expect(page.locator("#alerts-unread")).to_have_count(0)
    assert problems == []
