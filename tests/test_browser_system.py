"""The System panel in a real browser: its charts gain points while a run trains on a real worker, with the
epoch ends marked; the compare page overlays a chosen system metric; the queue page shows the worker's machine.

Screenshots go to test-artifacts/screenshots/system-*.png.
"""

import pytest

from experiments.jobs import launching
from experiments.models import Execution
from tests.browser import Shots, logged_in
from tests.helpers import tiny
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = [pytest.mark.browser, pytest.mark.training, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(root, tmp_path, settings, monkeypatch):
    """A real worker sampling every 0.5 s, with epochs of a second (tests.hooks.pause) to watch."""
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    flush()
    env = worker_env(root, tmp_path / "cache", GYMNOS_SYSTEM_INTERVAL="0.5", GYMNOS_TEST_EPOCH_PAUSE="1")
    process = WorkerProcess(env, tmp_path / "worker.log")
    yield process
    process.stop()
    flush()
    print("worker log (tail):\n" + (tmp_path / "worker.log").read_text(errors="replace")[-3000:])


def cpu_chart(page):
    """Points on the System panel's CPU chart (its first trace), and the epoch lines drawn on it."""
    return page.evaluate(
        """() => {
            const chart = document.getElementById("system-chart-cpu");
            if (!chart || !chart.data || !chart.data.length) return {points: 0, epochs: 0};
            return {points: chart.data[0].x.length, epochs: (chart.layout.shapes || []).length};
        }"""
    )


def slow(epochs):
    return tiny(epochs=epochs, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])


def test_the_system_panel_fills_in_while_the_run_trains(live_server, browser, worker, owner):
    from playwright.sync_api import expect

    page = logged_in(browser, live_server.url, owner)
    errors = []
    page.context.on("weberror", lambda error: errors.append(str(error.error)))
    shot = Shots("system")
    worker.wait_ready()
    execution = launching.launch(slow(epochs=8), user=owner)
    page.goto(f"/executions/{execution.pk}/")

    page.wait_for_function(
        "() => { const c = document.getElementById('system-chart-cpu'); return c && c.data && c.data[0].x.length; }",
        timeout=120_000,
    )
    first = cpu_chart(page)
    expect(page.locator("#system-chart-memory")).to_be_visible()
    shot(page, "training")
    page.wait_for_function(
        """(before) => {
            const c = document.getElementById('system-chart-cpu');
            return c.data[0].x.length > before && (c.layout.shapes || []).length >= 1;
        }""",
        arg=first["points"],
        timeout=60_000,
    )
    second = cpu_chart(page)
    assert second["points"] > first["points"], (first, second)
    assert second["epochs"] >= 1, (first, second)
    assert Execution.objects.get(pk=execution.pk).status == "running"  # it grew while the run trained
    expect(page.locator(".system-epochs-hint")).to_be_visible()

    # The queue page, meanwhile: the worker's machine, busy.
    queue = page.context.new_page()
    queue.goto("/queue/")
    expect(queue.locator(f'td.machine[data-worker="{worker.name}"]')).to_contain_text("CPU", timeout=30_000)
    expect(queue.locator(f'td.machine[data-worker="{worker.name}"]')).to_contain_text("GB")
    shot(queue, "queue")
    queue.close()

    wait_for(lambda: Execution.objects.get(pk=execution.pk).status == "succeeded", timeout=120, message="run done")
    wait_for(lambda: Execution.objects.get(pk=execution.pk).system.get("samples"), timeout=30, message="indexed")
    page.wait_for_function(  # the last poll, once the run ended, reads the index: every epoch's end is there
        "() => (document.getElementById('system-chart-cpu').layout.shapes || []).length === 8", timeout=30_000
    )
    expect(page.locator("#system-summary")).to_contain_text("peak memory")
    shot(page, "finished")

    # The compare page: this run and another, one system metric overlaid, the metric chosen from a menu.
    other = launching.launch(slow(epochs=2), user=owner)
    wait_for(lambda: Execution.objects.get(pk=other.pk).system.get("samples"), timeout=120, message="second run")
    page.goto(f"/compare/?runs={execution.pk},{other.pk}")
    chart = page.locator("#compare-system-chart")
    page.wait_for_function(
        "() => { const c = document.getElementById('compare-system-chart'); return c.data && c.data.length === 2; }"
    )
    assert page.input_value("#system-metric") == "memory_mb"
    page.select_option("#system-metric", "cpu_percent")
    expect(chart.locator(".gtitle")).to_have_text("CPU of this run (% of one core)")
    names = page.evaluate("() => document.getElementById('compare-system-chart').data.map(t => t.name)")
    folders = [str(run.folder_name) for run in Execution.objects.filter(pk__in=[execution.pk, other.pk])]
    assert sorted(names) == sorted(folders)  # both titled "Boston Housing": named by their folders, as in the legend
    shot(page, "compare")
    assert errors == []
