"""The experiment table, the compare page, the run page's System panel and the sweep page listen (issue 24), in a
real browser, on a real worker and Redis, under uvicorn (``tests/asgi_server.py``, as ``manage.py up`` serves them).

A page that listens reads its data only when its stream says something changed: it reads no more often than it
was told (``body[data-live-events]``, live.js's count), where a polling page reads every 2 s told nothing.
"""

import json
from urllib.parse import quote

import pytest

from experiments.models import Execution
from sweeps.launching import launch_sweep
from sweeps.models import Sweep
from tests.browser import logged_in
from tests.folders import make_run
from tests.helpers import tiny
from tests.test_browser_live import EPOCHS, slow_run
from tests.test_live_stream import Events, logged_in_cookies
from tests.workers import WorkerProcess, flush, queues_at, worker_env

pytestmark = [pytest.mark.browser, pytest.mark.training, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(root, tmp_path, settings, monkeypatch):
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    flush()
    env = worker_env(root, tmp_path / "cache", GYMNOS_TEST_EPOCH_PAUSE="2", GYMNOS_SYSTEM_INTERVAL="0.5")
    process = WorkerProcess(env, tmp_path / "worker.log")
    yield process
    process.stop()
    flush()
    print("worker log (tail):\n" + (tmp_path / "worker.log").read_text(errors="replace")[-3000:])


def reads(asked, ending):
    return [url for url in asked if url.split("?")[0].endswith(ending)]


def told(page):
    return int(page.evaluate("() => Number(document.body.getAttribute('data-live-events') || 0)"))


def test_a_run_launched_while_the_table_is_open_shows_up_and_the_compare_page_follows_it(
    asgi_server, browser, worker, owner, root
):
    earlier = make_run(root, "06-16-31__08-04-2019", owner=owner)
    page = logged_in(browser, asgi_server.url, owner)
    table = page.context.new_page()
    table.goto(f"/experiments/{quote(earlier.experiment.name)}/")
    table.wait_for_selector("body[data-live=live]")  # its first page listens though no run it shows is live
    table.check(f"#executions input[value='{earlier.pk}']")

    execution = slow_run(owner)
    row = f"#executions tr:has(input[value='{execution.pk}'])"
    table.wait_for_selector(row, timeout=60_000)  # read again on the new run's first status event
    assert table.is_checked(f"#executions input[value='{earlier.pk}']")  # what was ticked stays ticked

    # The run's own stream carries its system samples, as the sampler wrote them.
    cookie = logged_in_cookies(asgi_server.url, owner, "pw-olivia-123")
    stream = Events(f"{asgi_server.url}/executions/{execution.pk}/events", timeout=120, Cookie=cookie)
    try:
        event, sample, _, _ = stream.until("system")
    finally:
        stream.close()
    assert event == "system"
    folder = root / execution.experiment.name / "executions" / Execution.objects.get(pk=execution.pk).folder_name
    written = [json.loads(line) for line in (folder / "system_metrics.jsonl").read_text().splitlines()]
    assert sample in written

    asked = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"/compare/?runs={earlier.pk},{execution.pk}")
    page.wait_for_function("() => document.getElementById('live-mode').textContent.includes('live')")
    page.wait_for_function(
        """(n) => { const c = document.querySelector("#charts [data-metric=loss]");
                    return c && c.data && c.data.length === 2 && c.data[1].x.length >= n; }""",
        arg=EPOCHS,
        timeout=120_000,
    )
    page.wait_for_function("() => document.getElementById('live-mode').textContent === ''")  # all ended
    assert any("/events/runs?runs=" in url for url in asked)
    # Once as the page opened, once as its stream opened, then only when told.
    assert len(reads(asked, "/compare/data.json")) <= 2 + told(page), (asked, told(page))
    table.wait_for_selector(f"{row} .badge.succeeded")

    # The run page's System panel drew the samples the stream announced.
    run_page = page.context.new_page()
    run_page.goto(f"/executions/{execution.pk}/")
    run_page.wait_for_selector("#system-chart-cpu")


def test_the_sweep_page_fills_in_from_its_stream(asgi_server, browser, worker, owner, root):
    pause = [{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}]
    sweep = launch_sweep(
        {
            "name": "width",
            "base": tiny(epochs=2, callbacks=pause),
            "parameters": {"model.network[0].units": {"choice": [4, 8]}},
            "method": "random",
            "trials": 2,
            "parallel": 1,
        },
        user=owner,
        trusted=True,
    )
    page = logged_in(browser, asgi_server.url, owner)
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"/sweeps/{sweep.pk}/")
    page.wait_for_function("() => document.getElementById('live-mode').textContent.includes('live')")
    page.wait_for_function(
        "() => Number(document.querySelector('[data-count=done]').textContent) === 2", timeout=240_000
    )
    page.wait_for_function("() => document.querySelector('#sweep-status .badge').textContent.trim() === 'finished'")
    page.wait_for_function("() => document.getElementById('live-mode').textContent === ''")  # the stream ended
    assert Sweep.objects.get(pk=sweep.pk).status == "finished"
    assert any(url.endswith(f"/sweeps/{sweep.pk}/events") for url in asked)
    assert len(reads(asked, f"/sweeps/{sweep.pk}/data.json")) <= 1 + told(page), (asked, told(page))
