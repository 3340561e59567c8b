"""The first hour of a new user, in a real browser at 1,280 px (issue 25): every page it opens fits the window.

Logged in as the first user (a superuser, as ``manage.py up`` makes it), on a real worker: launch from the
New run form with a field error and a JSON problem at once, fix them and watch the run train live; a
run's first view in a fresh browser is timed (navigation timing) with what it downloads; a run shorter
than the system sampler's interval; compare two runs titled alike and read each one's name in the
legend; start a sweep from the sweeps list (New sweep, choose the run, a grid over the learning rate,
with a choice that fails its trials); watch its counts (queued apart from running), read why a trial
failed, see "Started" go once it ended; "What works" draws the sweep's runs, its axes and defaults in
order; delete a run and restore it. No page scrolls sideways, none runs into the Content-Security-Policy.

Screenshots of each page go to test-artifacts/screenshots/first-hour-*.png, and with
GYMNOS_DOCS_SCREENSHOTS=1 to docs/screenshots/ (the ones the docs show).
"""

import json
import os
import re
import statistics

import pytest

from tests.browser import Shots
from tests.folders import make_run, permalink
from tests.helpers import ROOT, seed_config
from tests.workers import WorkerProcess, flush, queues_at, worker_env

pytestmark = [pytest.mark.browser, pytest.mark.training, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-first-hour-123"
EPOCH_PAUSE = "1.0"  # seconds each epoch lasts on the worker: the page polls every 2 s
OTHER = "06-16-31__08-04-2019"  # a finished 15-epoch run titled "Boston Housing", like the one launched
SHORT = "06-39-51__10-04-2019"  # a run that ended within one interval of the system sampler
WATCH = """
(() => {
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__gymnosReport("CSP violation on " + location.pathname + ": " + e.violatedDirective + " blocked "
      + (e.blockedURI || "inline") + " (" + e.sourceFile + ":" + e.lineNumber + ")");
  });
})();
"""
# Navigation timing of the page just opened, in milliseconds from the request, when the page drew its first chart
# (its own mark: static/js/execution.js), and what its resources weighed.
TIMING = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const chart = performance.getEntriesByName("gymnos:first-chart")[0];
  const curve = performance.getEntriesByName("gymnos:first-curve")[0];
  return {
    response: nav.responseEnd, dom: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
    chart: chart ? chart.startTime : null, curve: curve ? curve.startTime : null,
    bytes: nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
    scripts: resources.filter((r) => r.name.endsWith(".js")).map((r) => [r.name, r.transferSize]),  // preloaded too
  };
}"""


@pytest.fixture
def worker(root, tmp_path, settings, monkeypatch):
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    flush()
    process = WorkerProcess(
        worker_env(root, tmp_path / "cache", GYMNOS_TEST_EPOCH_PAUSE=EPOCH_PAUSE), tmp_path / "worker.log"
    )
    yield process  # not waited for here: it imports TensorFlow while the browser logs in
    process.stop()
    flush()
    print("worker log (tail):\n" + (tmp_path / "worker.log").read_text(errors="replace")[-3000:])


@pytest.fixture
def admin(django_user_model):
    """The first user, as ``manage.py up`` creates it: a superuser."""
    return django_user_model.objects.create_superuser("admin", password=PASSWORD)


FITS = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def fits(page):
    """Whether the page fits the window's width (only a table's own scroll box may scroll sideways), once the
    charts drawing as it opened have taken their width (a few seconds at most)."""
    try:
        page.wait_for_function(FITS, timeout=5_000)
    except Exception:  # noqa: BLE001 - Playwright's timeout: it does not fit
        return False
    return True


def too_wide(page):
    """The elements that reach past the window's right edge (what makes a page scroll sideways)."""
    return page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            return Array.from(document.querySelectorAll("body *"))
                .filter((e) => e.getBoundingClientRect().right > width + 1)
                .slice(0, 8)
                .map((e) => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`);
        }"""
    )


def visit(page, shot, path, name, ready=None):
    page.goto(path)
    if ready:
        page.wait_for_selector(ready, timeout=120_000)
    assert fits(page), f"{path} scrolls sideways at 1,280 px: {too_wide(page)}"
    shot(page, name)


def like_the_launched_one():
    """The Boston example as the walk launches it from the form (early stopping out, each epoch slowed)."""
    config = seed_config()
    config["training"]["callbacks"] = [
        *(c for c in config["training"]["callbacks"] if c["type"] != "early_stopping"),
        {"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"},
    ]
    return config


def one_sample_run(root, owner):
    """A finished run whose system sampler took a single sample before it ended."""
    run = make_run(root, SHORT, config=like_the_launched_one(), owner=owner)
    lines = [
        {"time": 0.0, "started_at": 1.0e9, "interval": 5.0},
        {"time": 5.0, "cpu_percent": 97.0, "memory_mb": 412.0},
    ]
    (root / "boston_housing" / "executions" / SHORT / "system_metrics.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    from experiments.index.sync import sync_trainings

    sync_trainings(root)
    return run


def first_view(browser, base, cookies, path):
    """Navigation timing of ``path`` opened as the first page of a fresh browser (nothing cached), logged in, and
    when it drew its first chart."""
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    context.add_cookies(cookies)
    page = context.new_page()
    page.goto(path, wait_until="load")
    page.wait_for_function("() => performance.getEntriesByName('gymnos:first-chart').length > 0", timeout=30_000)
    timing = page.evaluate(TIMING)
    context.close()
    return timing


def test_the_first_hour(live_server, browser, worker, admin, root):
    from playwright.sync_api import expect

    from experiments.models import Execution
    from sweeps.models import Sweep

    other = make_run(root, OTHER, config=like_the_launched_one(), owner=admin)
    short = one_sample_run(root, admin)
    base = live_server.url
    folder = ROOT / "docs" / "screenshots" if os.environ.get("GYMNOS_DOCS_SCREENSHOTS") else None
    shot = Shots("first-hour", folder=folder)
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    problems = []
    context.expose_function("__gymnosReport", lambda text: problems.append(text))
    context.add_init_script(WATCH)
    context.on("weberror", lambda error: problems.append(f"{error.page and error.page.url}: {error.error}"))
    page = context.new_page()

    # --- log in ------------------------------------------------------------------------------------
    visit(page, shot, "/", "login")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(base + "/")
    assert fits(page)
    shot(page, "experiments")
    assert page.request.get(base + "/favicon.ico").status == 200

    # --- the New run form: a field error and a JSON problem, told at once ---------------------------
    visit(page, shot, "/runs/new/", "new-run")
    config = json.loads(page.input_value("#id_config"))
    config["model"]["network"][0]["activaton"] = "relu"  # misspelt: only Keras can tell
    page.fill("#id_config", json.dumps(config, indent=2))
    page.fill("#id_epochs", "-3")
    page.click("#run-form button[type=submit]")
    epochs_field = page.locator(".field", has=page.locator("#id_epochs"))
    expect(epochs_field).to_contain_text("training.epochs: must be a positive integer, got -3")
    expect(page.locator("#json-problems")).to_contain_text("model.network[0].activaton: unknown argument for dense")
    assert fits(page)
    shot(page, "new-run-problems")
    assert Execution.objects.count() == 2  # nothing launched

    # Fixed: 4 epochs, slowed so the page is seen training, without early stopping (it could end it sooner).
    config = like_the_launched_one()
    config["training"]["epochs"] = 4
    page.fill("#id_config", json.dumps(config, indent=2))
    page.fill("#id_epochs", "4")
    page.dispatch_event("#id_epochs", "change")
    page.click("#run-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Queued Boston Housing")
    launched = Execution.objects.exclude(pk__in=[other.pk, short.pk]).get()

    # --- watch it train: the loss chart gains points while it runs -----------------------------------
    page.wait_for_function(
        "() => { const c = document.getElementById('chart-loss'); return c && c.data && c.data[0].x.length >= 1; }",
        timeout=180_000,
    )
    expect(page.locator("#status .badge")).to_have_text("running")
    expect(page.locator("#status")).to_contain_text("of 4")
    assert fits(page)
    shot(page, "run-training")
    page.wait_for_function(
        "() => document.getElementById('chart-loss').data[0].x.length >= 2", timeout=120_000
    )  # a second point, drawn while it trains
    expect(page.locator("#status .badge")).to_have_text("succeeded", timeout=120_000)
    expect(page.locator("#status")).to_contain_text("4 of 4 epochs")
    launched.refresh_from_db()
    run_path = permalink(launched)
    visit(page, shot, run_path, "run", "#chart-loss .main-svg")

    # --- a run's first view in a fresh browser: what it downloads, and how long it takes --------------
    cookies = context.cookies()
    views = [first_view(browser, base, cookies, run_path) for _ in range(7)]
    print("first views of a run's page (ms: response, curves drawn, DOM ready, load, first Plotly chart; bytes):")
    for view in views:
        print(
            f"  {view['response']:.0f} {view['curve']:.0f} {view['dom']:.0f} {view['load']:.0f} {view['chart']:.0f}"
            f" {view['bytes']:,}"
        )
    plotly = [(name, size) for name, size in views[0]["scripts"] if "plotly" in name]
    assert len(plotly) == 1, views[0]["scripts"]
    assert "plotly-gymnos-basic.min." in plotly[0][0], views[0]["scripts"]  # a regressor's page
    assert plotly[0][1] < 380_000  # gzipped: 0.36 MB of 1.0 (Plotly's basic bundle 0.40, the full one 4.8 MB whole)
    assert views[0]["bytes"] < 700_000
    best = min(view["load"] for view in views)
    first_chart = min(view["chart"] for view in views)
    first_curve = min(view["curve"] for view in views)
    medians = [statistics.median(v[key] for v in views) for key in ("curve", "load", "chart")]
    print(
        f"best of 7: curves {first_curve:.0f} ms, load {best:.0f} ms, first chart {first_chart:.0f} ms;"
        f" median {medians[0]:.0f}, {medians[1]:.0f}, {medians[2]:.0f}"
    )
    # The goal is 500 ms for both on a quiet machine (docs/performance.md has the figures). On two cores shared
    # with other test runs the same page took 0.6-1.7 s, and 5.3-8.5 s with the full bundle: a loose bound, the
    # bytes above are the strict one.
    assert best < 1500, views
    assert first_chart < 1500, views
    assert first_curve <= first_chart, views  # the curves on screen no later than Plotly's chart

    # --- a run shorter than the sampler's interval: its System panel says so, no empty charts ----------
    visit(page, shot, permalink(short), "run-short", "#system-empty:not([hidden])")
    expect(page.locator("#system-empty")).to_have_text(
        "1 sample (interval 5 s): too short to chart; the line above gives what it measured."
    )
    expect(page.locator("#system-summary")).to_contain_text("1 sample every 5 s")
    expect(page.locator("#system-charts .chart")).to_have_count(0)

    # --- compare the two "Boston Housing" runs: each legend names them apart --------------------------
    visit(page, shot, "/experiments/boston_housing/", "experiment", "#explore[data-loaded='1']")
    page.check(f"input[name=runs][value='{launched.pk}']")
    page.check(f"input[name=runs][value='{other.pk}']")
    page.click("#compare-button")
    page.wait_for_url(re.compile(r"/compare/\?runs=\d+,\d+$"))
    page.wait_for_selector("#charts .chart[data-metric='loss'] .legendtext")
    legend = page.locator("#charts .chart[data-metric='loss'] .legendtext").all_text_contents()
    assert launched.folder_name is not None
    assert sorted(legend) == sorted([launched.folder_name, OTHER]), legend
    assert fits(page)
    shot(page, "compare")

    # --- a sweep from the sweeps list: New sweep, choose the run, what to search -----------------------
    visit(page, shot, "/sweeps/", "sweeps-empty")
    page.click("#new-sweep")
    page.wait_for_url(base + "/sweeps/new/")
    assert fits(page)
    shot(page, "new-sweep")
    page.select_option("#sweep-base", str(launched.pk))
    page.click("#sweep-from-run button[type=submit]")
    page.wait_for_url(re.compile(r"/sweeps/new/\?from=\d+$"))
    assert fits(page), "the sweep form scrolls sideways"

    def row(path):
        return page.locator("tr[data-row]", has=page.get_by_text(path, exact=True))

    rate = row("model.compilation.optimizer.learning_rate")
    rate.locator("input[type=checkbox]").check()
    rate.locator("select").select_option("choice")
    rate.locator("[data-choices]").fill("0.01, 0.003, 0.001")
    activation = row("model.network[0].activation")
    activation.locator("input[type=checkbox]").check()
    activation.locator("select").select_option("choice")
    activation.locator("[data-choices]").fill("relu, relux")  # relux: no such activation, its trials fail
    page.select_option("#id_method", "grid")
    page.fill("#id_trials", "")
    page.fill("#id_parallel", "2")
    shot(page, "sweep-form")
    page.click("#sweep-form button[type=submit]")
    page.wait_for_url(re.compile(r"/sweeps/\d+/$"))
    sweep = Sweep.objects.get()
    expect(page.locator(".messages")).to_contain_text(f"Started {sweep.name}: 6 trials.")

    # Two at once on one worker: one runs, the other waits, and the page says which is which.
    page.wait_for_function(
        """() => Number(document.querySelector('[data-count=running]').textContent) === 1
                 && Number(document.querySelector('[data-count=queued]').textContent) >= 1""",
        timeout=240_000,
    )
    shot(page, "sweep-running")
    expect(page.locator("#sweep-status .badge")).to_have_text("finished", timeout=400_000)
    counts = {name: int(page.locator(f"[data-count={name}]").inner_text()) for name in ("done", "failed", "total")}
    assert counts == {"done": 3, "failed": 3, "total": 6}, counts
    failed = page.locator("#sweep-trials tbody tr", has=page.locator(".badge.failed")).first
    expect(failed.locator(".trial-reason")).to_contain_text("relux")
    expect(page.locator(".messages li.started")).to_have_count(0)  # "Started ..." went once it ended
    assert fits(page)
    shot(page, "sweep")
    visit(page, shot, "/sweeps/", "sweeps")

    # --- "What works" draws the sweep's runs, the optimizer as one type and one rate ---------------------
    visit(page, shot, "/experiments/boston_housing/", "what-works", "#explore[data-loaded='1']")
    columns = page.locator("#executions thead a[data-column]").evaluate_all(
        "(links) => links.map((a) => a.dataset.column)"
    )
    assert "params.model.compilation.optimizer.learning_rate" in columns, columns
    assert "params.model.compilation.optimizer" not in columns, columns
    assert "system.interval_s" not in columns, columns
    drawn = re.search(r"\((\d+) with every value drawn\)", page.locator("#explore-state").inner_text())
    assert drawn is not None, page.locator("#explore-state").inner_text()
    assert int(drawn.group(1)) == 3, page.locator("#explore-state").inner_text()
    assert page.input_value("#explore-x") == "params.model.compilation.optimizer.learning_rate"
    clipped = page.evaluate(
        """() => {
            const box = document.getElementById("parallel").getBoundingClientRect();
            return Array.from(document.querySelectorAll("#parallel svg text"))
                .map((t) => [t.textContent, t.getBoundingClientRect()])
                .filter(([text, r]) => text && r.width && (r.left < box.left - 1 || r.right > box.right + 1))
                .map(([text]) => text);
        }"""
    )
    assert clipped == [], clipped

    # --- delete a run, and restore it from the trash ------------------------------------------------------
    page.goto(permalink(other))
    page.click("#delete-menu summary")
    page.click("#delete-run")
    expect(page.locator(".messages")).to_contain_text("trash")
    visit(page, shot, "/trash/", "trash")
    row_of_other = page.locator("#trash-table tbody tr", has_text=OTHER)
    row_of_other.locator("button:has-text('Restore')").click()
    page.wait_for_url(base + permalink(other))
    expect(page.locator(".messages")).to_contain_text(f"Restored boston_housing/{OTHER}")
    assert Execution.objects.get(pk=other.pk).status == "succeeded"

    for path, name in (("/queue/", "queue"), ("/shares/", "shares"), (f"/compare/?runs={launched.pk}", "compare-one")):
        visit(page, shot, path, name)
    assert problems == []
