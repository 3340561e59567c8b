"""The dashboard in a real browser: Playwright driving Debian's Chromium against a live server.

One walk through what a team does, on a real RQ worker and the test database: log in, launch
the Boston Housing example with 3 epochs from the New run form, watch its loss chart gain
points while it trains, download model.h5 and load it with Keras, compare it with another run,
share it, and open the share link in a fresh browser (no login) to see that run and nothing
else. Every page visited is saved under test-artifacts/screenshots/.

Chromium is Debian's (``.ci/run`` installs the ``chromium`` package); Playwright cannot
download its own browser here. Without it the test fails, saying so: it does not skip.
"""

import json
import re
from urllib.parse import urlparse

import pytest

from tests.browser import OWNER_PASSWORD, Shots
from tests.folders import make_run, permalink
from tests.workers import WorkerProcess, flush, queues_at, worker_env

pytestmark = [pytest.mark.browser, pytest.mark.training, pytest.mark.django_db(transaction=True)]

EPOCH_PAUSE = "3.5"  # seconds each epoch lasts on the worker: longer than the page's 2 s poll
OTHER_RUN = "06-16-31__08-04-2019"  # a finished 15-epoch run already in the index


def loss_chart(page):
    """How many points the execution page's loss chart draws (train trace), and the status badge."""
    return page.evaluate(
        """() => {
            const chart = document.getElementById("chart-loss");
            const badge = document.querySelector("#status .badge");
            return {
                points: chart && chart.data && chart.data.length ? chart.data[0].x.length : 0,
                status: badge ? badge.textContent.trim() : null,
            };
        }"""
    )


@pytest.fixture
def worker(root, tmp_path, settings, monkeypatch):
    """A real ``rqworker`` on the test Redis and database, training into the root the live server reads."""
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")  # the form validates lambda_callback here too
    settings.RQ_QUEUES = queues_at()
    flush()
    process = WorkerProcess(
        worker_env(root, tmp_path / "cache", GYMNOS_TEST_EPOCH_PAUSE=EPOCH_PAUSE), tmp_path / "worker.log"
    )
    yield process  # not waited for here: it imports TensorFlow while the browser logs in
    process.stop()
    flush()
    print(
        "worker log (tail):\n" + (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
    )  # shown if the test failed


def test_a_team_launches_watches_compares_downloads_and_shares_a_run(
    live_server, browser, worker, owner, root, tmp_path
):
    from playwright.sync_api import expect

    other = make_run(root, OTHER_RUN, owner=owner)
    base = live_server.url
    shot = Shots()
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors = []  # JavaScript errors on any page, checked at the end
    context.on("weberror", lambda error: errors.append(f"{error.page.url if error.page else '?'}: {error.error}"))

    # --- log in: the experiments list asks for a login, then opens --------------------------------
    page.goto("/")
    assert urlparse(page.url).path == "/accounts/login/"
    expect(page.locator("h1")).to_have_text("Log in to Gymnos")
    shot(page, "login")
    page.fill("#id_username", owner.username)
    page.fill("#id_password", OWNER_PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(base + "/")
    expect(page.locator("h1")).to_have_text("Experiments")
    expect(page.locator("table")).to_contain_text("boston_housing")
    shot(page, "experiments")

    # --- launch the Boston example with 3 epochs from the New run form ----------------------------
    page.click("nav >> text=New run")
    page.wait_for_url(base + "/runs/new/")
    config = json.loads(page.input_value("#id_config"))
    assert config["dataset"]["name"] == "boston_housing"
    assert config["training"]["epochs"] == 25
    page.fill("#id_epochs", "3")
    page.dispatch_event("#id_epochs", "change")  # the form's script writes the field into the JSON
    config = json.loads(page.input_value("#id_config"))
    assert config["training"]["epochs"] == 3
    # Slow each epoch down (tests.hooks.pause, allowed by GYMNOS_CALLBACK_MODULES) so the chart can be watched;
    # without early stopping (patience 0), so one epoch of rising val_loss cannot end the run before "3 of 3".
    config["training"]["callbacks"] = [c for c in config["training"]["callbacks"] if c["type"] != "early_stopping"]
    config["training"]["callbacks"].append({"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"})
    page.fill("#id_config", json.dumps(config, indent=2))
    expect(page.locator("#id_epochs")).to_have_value("3")
    shot(page, "new-run")
    page.click("#run-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Queued Boston Housing")
    from experiments.models import Execution

    launched = Execution.objects.exclude(pk=other.pk).get()
    assert launched.epochs_total == 3
    assert launched.launched_by == owner
    assert launched.config is not None
    assert launched.config["training"]["epochs"] == 3

    # --- the execution page: the loss chart gains points while it trains -------------------------
    page.wait_for_function(
        "() => { const c = document.getElementById('chart-loss'); return c && c.data && c.data[0].x.length >= 1; }",
        timeout=120_000,
    )
    first = loss_chart(page)
    assert first["status"] == "running", first
    shot(page, "execution-running")
    page.wait_for_function(
        """(before) => {
            const c = document.getElementById('chart-loss');
            return c.data[0].x.length > before
                || document.querySelector('#status .badge').textContent.trim() !== 'running';
        }""",
        arg=first["points"],
        timeout=60_000,
    )
    second = loss_chart(page)
    assert second["points"] > first["points"], (first, second)
    assert second["status"] == "running", (first, second)
    assert re.search(r"/experiments/boston_housing/executions/[^/]+/$", page.url), (
        page.url
    )  # the permalink, once it has a folder
    expect(page.locator("#status")).to_contain_text("of 3")

    # The queue, meanwhile, in a second tab.
    queue = context.new_page()
    queue.goto("/queue/")
    expect(queue.locator("h1")).to_have_text("Queue")
    expect(queue.locator("#queue")).to_contain_text(worker.name)
    shot(queue, "queue")
    queue.close()

    expect(page.locator("#status .badge")).to_have_text("succeeded", timeout=90_000)
    expect(page.locator("#status")).to_contain_text("3 of 3 epochs")
    assert loss_chart(page)["points"] == 3
    expect(page.locator("#hardware")).to_contain_text("Python 3.")  # opened while queued, filled in when it ended
    expect(page.locator("#elapsed .main-svg").first).to_be_visible()  # the time-by-stage chart, drawn at the end
    shot(page, "execution-succeeded")
    launched.refresh_from_db()
    run_page = page.url

    # --- download model.h5 through the page's link, and load it ----------------------------------
    with page.expect_download() as download_info:
        page.click("#files a:text-is('model.h5')")
    download = download_info.value
    assert download.suggested_filename == "model.h5"
    model_path = tmp_path / "downloaded-model.h5"
    download.save_as(str(model_path))
    import keras

    model = keras.models.load_model(model_path, compile=False)
    assert model.input_shape == (None, 13)
    assert model.output_shape == (None, 1)

    # --- share it through the UI ------------------------------------------------------------------
    share = "details.share-menu:has(summary:has-text('Share'))"  # the page has other menus (Alert me…, Delete…)
    page.click(f"{share} summary")
    page.click(f"{share} button:has-text('Create link')")
    expect(page.locator(".messages")).to_contain_text("Share link created")
    shared = re.search(r"https?://\S+/s/[^/\s]+/", page.locator(".messages").inner_text())
    assert shared is not None
    share_url = shared.group(0)
    expect(page.locator(".sharebox input").first).to_have_value(share_url)

    # --- the experiment page: tick both runs, Compare ---------------------------------------------
    page.click(".crumbs a:text-is('boston_housing')")
    page.wait_for_url(base + "/experiments/boston_housing/")
    rows = page.locator("#executions tbody tr")
    expect(rows).to_have_count(2)
    shot(page, "experiment")
    page.check(f"input[name=runs][value='{launched.pk}']")
    page.check(f"input[name=runs][value='{other.pk}']")
    page.click("#compare-button")
    page.wait_for_url(re.compile(r"/compare/\?runs=\d+,\d+$"))
    assert set(page.url.rsplit("=", 1)[1].split(",")) == {str(launched.pk), str(other.pk)}
    page.wait_for_function("() => document.querySelector('#charts .chart[data-metric=\"loss\"] .main-svg')")
    traces = page.evaluate(
        """() => Array.from(document.querySelectorAll('#charts .chart')).map(div => ({
            metric: div.dataset.metric, points: (div.data || []).map(trace => trace.x.length),
        }))"""
    )
    by_metric = {chart["metric"]: chart["points"] for chart in traces}
    assert sorted(by_metric["loss"]) == [3, 15], traces
    assert sorted(by_metric["val_loss"]) == [3, 15], traces
    expect(page.locator("h1")).to_have_text("Comparing 2 runs")
    shot(page, "compare")

    # --- the share link, in a fresh browser context: that run, and nothing else -------------------
    visitor = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    visitor.set_default_timeout(30_000)
    visitor.on("weberror", lambda error: errors.append(f"{error.page.url if error.page else '?'}: {error.error}"))
    guest = visitor.new_page()
    response = guest.goto(share_url)
    assert response.status == 200
    expect(guest.locator("h1")).to_have_text(launched.folder_name)
    guest.wait_for_function(
        "() => { const c = document.getElementById('chart-loss'); return c && c.data && c.data[0].x.length === 3; }"
    )
    expect(guest.locator("#files")).to_contain_text("Downloads are not part of this share link.")
    expect(guest.locator("#files")).to_contain_text("loss")  # the metrics table
    expect(guest.locator("pre.config")).to_contain_text('"epochs": 3')
    assert guest.locator("nav.nav").count() == 0
    assert guest.locator("details.share-menu").count() == 0
    body = guest.content()
    assert OTHER_RUN not in body
    assert owner.username not in body
    shot(guest, "share-view")

    login = f"{base}/accounts/login/"
    for path in [
        "/",
        "/experiments/boston_housing/",
        urlparse(run_page).path,
        permalink(other),
        f"/executions/{other.pk}/data.json",
        "/compare/?runs=1,2",
        "/queue/",
        "/runs/new/",
        "/shares/",
    ]:
        guest.goto(path)
        assert guest.url.startswith(login), f"{path} opened for a share-link visitor: {guest.url}"
    guest.goto("/admin/")
    assert urlparse(guest.url).path == "/admin/login/"
    for path in [f"/api/executions/{launched.pk}", f"/api/executions/{other.pk}"]:
        assert visitor.request.get(path).status == 401, path
    token = share_url.rstrip("/").rsplit("/", 1)[1]
    assert visitor.request.get(f"/s/{token}/files/model.h5").status == 404  # downloads were not ticked
    visitor.close()
    context.close()
    assert not errors, errors
