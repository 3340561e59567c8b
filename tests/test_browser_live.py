"""The run page listens to its run (server-sent events) in a real browser, on a real worker and Redis.

The page is served by uvicorn (``tests/asgi_server.py``, as ``manage.py up`` serves it); the run trains on a real
``rqworker``, each epoch slowed by ``tests.hooks.pause`` so the page can be watched.
"""

import os
from urllib.parse import quote

import pytest

from experiments.jobs.launching import launch
from experiments.models import Execution
from tests.browser import logged_in
from tests.helpers import tiny
from tests.workers import REDIS_URL, WorkerProcess, flush, queues_at, worker_env

pytestmark = [pytest.mark.browser, pytest.mark.training, pytest.mark.django_db(transaction=True)]

EPOCHS = 8


@pytest.fixture
def worker(root, tmp_path, settings, monkeypatch):
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")  # the launch validates the pause hook here too
    settings.RQ_QUEUES = queues_at()
    flush()
    process = WorkerProcess(worker_env(root, tmp_path / "cache", GYMNOS_TEST_EPOCH_PAUSE="2"), tmp_path / "worker.log")
    yield process
    process.stop()
    flush()
    print("worker log (tail):\n" + (tmp_path / "worker.log").read_text(errors="replace")[-3000:])


def slow_run(owner):
    pause = {"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}
    return launch(tiny(epochs=EPOCHS, callbacks=[pause]), owner, trusted=True, check=lambda config: [])


def points(page):
    return page.evaluate(
        """() => { const c = document.getElementById("chart-loss");
                   return c && c.data && c.data.length ? c.data[0].x.length : 0; }"""
    )


def wait_for_points(page, count, timeout=120_000):
    page.wait_for_function(
        """(n) => { const c = document.getElementById("chart-loss");
                    return c && c.data && c.data.length && c.data[0].x.length >= n; }""",
        arg=count,
        timeout=timeout,
    )


def test_the_run_pages_chart_gains_points_pushed_without_a_poll(asgi_server, browser, worker, owner, root):
    execution = slow_run(owner)
    page = logged_in(browser, asgi_server.url, owner)
    # The experiment's table and the queue page listen to every run's changes (opened while the run waits).
    table = page.context.new_page()
    table.goto(f"/experiments/{quote(execution.experiment.name)}/")
    row = f"#executions tr:has(input[value='{execution.pk}'])"
    assert table.text_content(f"{row} .badge") == "queued"
    table.wait_for_selector("body[data-live=live]")
    queue = page.context.new_page()
    queue.goto("/queue/")
    queue.wait_for_function("() => document.getElementById('live-mode').textContent.includes('live')")
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"/executions/{execution.pk}/")
    page.wait_for_function("() => document.getElementById('live-mode').textContent.includes('live')")
    wait_for_points(page, 1)
    before = points(page)
    wait_for_points(page, before + 1, timeout=60_000)
    assert Execution.objects.get(pk=execution.pk).status == "running"
    data_reads = [url for url in asked if url.endswith("/data.json")]
    assert data_reads == [], data_reads  # the page opened with its data (first-data); every point since came pushed
    assert any(url.endswith("/events?after=0") for url in asked)
    # To the end: the last point, the status, the log's last lines; the page then stops listening.
    page.wait_for_function("() => document.querySelector('#status .badge').textContent.trim() === 'succeeded'")
    wait_for_points(page, EPOCHS, timeout=30_000)
    page.wait_for_function("() => document.getElementById('live-mode').textContent === ''")
    log = root / execution.experiment.name / "executions" / Execution.objects.get(pk=execution.pk).folder_name
    last_line = (log / "execution.log").read_text().strip().splitlines()[-1]
    page.wait_for_function("(line) => document.getElementById('log').textContent.includes(line)", arg=last_line)
    # The queue page read its fragment again when the run ended: nothing is training any more.
    queue.wait_for_function("() => document.getElementById('queue').textContent.includes('No run is training')")
    table.wait_for_selector(f"{row} .badge.succeeded")  # pushed: the table does not poll, nor was it reloaded
    assert table.text_content(f"{row} td:nth-child(6)") == f"{EPOCHS}/{EPOCHS}"


def test_a_dropped_redis_connection_makes_the_page_poll_and_catch_up(asgi_server, browser, worker, owner):
    import redis

    execution = slow_run(owner)
    page = logged_in(browser, asgi_server.url, owner)
    page.goto(f"/executions/{execution.pk}/")
    page.wait_for_function("() => document.getElementById('live-mode').textContent.includes('live')")
    wait_for_points(page, 2)
    server = redis.Redis.from_url(REDIS_URL)
    # The streams of this process (the test's ASGI server) listen through one connection (experiments.live.hub).
    streams = [client for client in server.client_list() if client["name"] == f"gymnos-stream-hub-{os.getpid()}"]
    assert len(streams) == 1, streams
    server.client_kill_filter(_id=streams[0]["id"])  # as a Redis restart drops it
    page.wait_for_function("() => document.getElementById('live-mode').textContent.includes('polling every 2 s')")
    page.wait_for_function("() => document.querySelector('#status .badge').textContent.trim() === 'succeeded'")
    wait_for_points(page, EPOCHS, timeout=30_000)
    shown = page.evaluate("() => document.getElementById('chart-loss').data[0].y")
    stored = dict(Execution.objects.get(pk=execution.pk).histories.values_list("name", "values"))["loss"]
    assert shown == pytest.approx(stored)  # nothing missing: what a reload shows
