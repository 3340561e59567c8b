"""A sweep in a real browser: launched from a run's page, its page filling in while a real worker trains.

Playwright drives Debian's Chromium against the live server; a real ``rqworker`` trains the trials
on the test Redis and database. Every page visited is saved under test-artifacts/screenshots/sweeps-*.
"""

import math
import re
from urllib.parse import urlparse

import pytest

from sweeps.models import Sweep
from tests.browser import Shots, logged_in
from tests.folders import make_run, permalink
from tests.helpers import tiny
from tests.workers import WorkerProcess, flush, queues_at, worker_env

pytestmark = [pytest.mark.browser, pytest.mark.training, pytest.mark.django_db(transaction=True)]

EPOCH_PAUSE = "0.8"  # each epoch lasts this long on the worker, so the page is seen filling in


@pytest.fixture
def worker(root, tmp_path, settings, monkeypatch):
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    flush()
    process = WorkerProcess(
        worker_env(root, tmp_path / "cache", GYMNOS_TEST_EPOCH_PAUSE=EPOCH_PAUSE), tmp_path / "worker.log"
    )
    yield process  # not waited for: it imports TensorFlow while the browser logs in
    process.stop()
    flush()
    print("worker log (tail):\n" + (tmp_path / "worker.log").read_text(errors="replace")[-3000:])


def count(page, name):
    return int(page.locator(f'[data-count="{name}"]').inner_text())


def chart(page, element_id):
    """What the Plotly chart in ``element_id`` draws: each trace's type and number of points."""
    return page.evaluate(
        """(id) => {
            const div = document.getElementById(id);
            if (!div || !div.data) return [];
            return div.data.map(t => ({
                type: t.type, mode: t.mode || null, name: t.name || null,
                points: t.type === "parcoords" ? t.dimensions[0].values.length : (t.x || []).length,
                dimensions: t.dimensions ? t.dimensions.map(d => d.label) : null,
            }));
        }""",
        element_id,
    )


def test_a_small_sweep_launched_from_a_run_fills_its_page_as_its_trials_train(
    live_server, browser, worker, owner, root
):
    from playwright.sync_api import expect

    pause = [{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}]
    run = make_run(root, "06-16-31__08-04-2019", config=tiny(epochs=3, callbacks=pause), owner=owner)
    page = logged_in(browser, live_server.url, owner)
    page.context.set_default_timeout(120_000)  # two shared cores: pages with Plotly load slowly under load
    errors = []
    page.context.on("weberror", lambda error: errors.append(str(error.error)))
    shot = Shots("sweeps")

    # --- the run's page offers the sweep; the form lists its config paths --------------------------
    page.goto(permalink(run))
    shot(page, "run")
    page.click("text=Sweep from this run")
    page.wait_for_url(re.compile(r"/sweeps/new/\?from=\d+$"))
    expect(page.locator("h1")).to_contain_text("Sweep from")

    def row(path):
        return page.locator("tr[data-row]", has=page.get_by_text(path, exact=True))

    units = row("model.network[0].units")
    units.locator("input[type=checkbox]").check()
    units.locator("select").select_option("choice")
    expect(units.locator("[data-range]").first).to_be_hidden()  # a choice takes values, not a range
    units.locator("[data-choices]").fill("4, 16")
    rate = row("model.compilation.optimizer.learning_rate")
    rate.locator("input[type=checkbox]").check()
    expect(rate.locator("select")).to_have_value("log_uniform")
    rate.locator('input[name^="low-"]').fill("0.001")
    rate.locator('input[name^="high-"]').fill("0.1")
    page.select_option("#id_method", "random")
    page.fill("#id_trials", "3")
    page.fill("#id_parallel", "1")
    shot(page, "form")
    page.click("#sweep-form button[type=submit]")
    page.wait_for_url(re.compile(r"/sweeps/\d+/$"))
    sweep = Sweep.objects.get()
    assert urlparse(page.url).path == f"/sweeps/{sweep.pk}/"
    assert sweep.base_execution == run
    assert set(sweep.document["parameters"]) == {
        "model.network[0].units",
        "model.compilation.optimizer.learning_rate",
    }
    expect(page.locator(".messages")).to_contain_text("Started")

    # --- the page fills in by itself: a trial running, then trials done, charts drawn --------------
    page.wait_for_function(
        "() => Number(document.querySelector('[data-count=running]').textContent) >= 1", timeout=180_000
    )
    shot(page, "first-trial-running")
    page.wait_for_function(
        "() => Number(document.querySelector('[data-count=done]').textContent) >= 1", timeout=180_000
    )
    expect(page.locator("#sweep-best")).to_contain_text("Trial ")
    shot(page, "first-trial-done")
    page.wait_for_function(
        "() => Number(document.querySelector('[data-count=done]').textContent) === 3", timeout=240_000
    )
    expect(page.locator("#sweep-status .badge")).to_have_text("finished", timeout=30_000)
    expect(page.locator("#cancel-sweep")).to_have_count(0)  # nothing left to cancel
    assert [count(page, name) for name in ("done", "running", "queued", "pruned", "failed", "total")] == [
        3,
        0,
        0,
        0,
        0,
        3,
    ]
    objective = chart(page, "objective-chart")
    assert [(t["name"], t["points"]) for t in objective] == [("succeeded", 3), ("best so far", 3)]
    [parcoords] = chart(page, "parcoords-chart")
    assert parcoords["points"] == 3
    assert parcoords["dimensions"] == [
        "network[0].units",
        "log10 optimizer.learning_rate",
        "val_loss",
    ]
    page.wait_for_function("() => document.getElementById('importance-chart').data", timeout=30_000)
    assert chart(page, "importance-chart")[0]["type"] == "bar"
    rows = page.locator("#sweep-trials tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("succeeded")
    shot(page, "finished")

    # --- the best trial's link opens its run --------------------------------------------------------
    best = min(sweep.trials.all(), key=lambda trial: math.inf if trial.value is None else trial.value)
    expect(page.locator(".best-value")).to_have_text(f"{best.value:.4g}")
    page.click(".best-link")
    page.wait_for_url(re.compile(r"/experiments/boston_housing/executions/"))
    assert best.execution is not None
    best.execution.refresh_from_db()
    assert urlparse(page.url).path == permalink(best.execution)
    page.go_back()

    # --- a share link shows the sweep to someone without an account -----------------------------
    page.click("summary:has-text('Share…')")
    page.click("button:has-text('Create link')")
    message = page.locator(".messages .share").inner_text()
    shared = re.search(r"https?://\S+/sweeps/s/\S+/", message)
    assert shared is not None
    link = shared.group(0)
    visitor = browser.new_context().new_page()
    visitor.set_default_timeout(120_000)
    visitor.goto(link)
    expect(visitor.locator("h1")).to_have_text(sweep.name)
    expect(visitor.locator('[data-count="done"]')).to_have_text("3")
    assert visitor.locator("a[href*='/executions/']").count() == 0
    visitor.wait_for_function("() => document.getElementById('parcoords-chart').data")
    shot(visitor, "shared")
    assert errors == []
