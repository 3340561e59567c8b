"""Finding what works, in a real browser: type a query, brush a parallel-coordinates axis, chart controls.

Playwright drives Debian's Chromium against a live server on the test database. A teammate types
a query and sees the table narrow; drags along the batch-size axis of the parallel-coordinates
chart and sees the table narrow again (the range became part of the query); then sets the chart
controls on a run's page (log scale, smoothing, wall time) and finds them as they left them on
the next page and after a reload. Screenshots go to test-artifacts/screenshots/search-*.png.
"""

import datetime as dt
import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from experiments.models import Execution, Experiment
from tests.browser import Shots, logged_in
from tests.folders import make_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OTHER_RUN = "06-39-51__10-04-2019"


def grid():
    """12 runs: batch size 16/32/64/128 x optimizer adam/sgd/rmsprop, val_loss best for adam and big batches."""
    experiment = Experiment.objects.create(name="grid")
    start = timezone.now() - dt.timedelta(days=2)
    index = 0
    for batch in (16, 32, 64, 128):
        for optimizer in ("adam", "sgd", "rmsprop"):
            execution = Execution(
                experiment=experiment,
                folder_name=f"run-{index:03d}",
                status=Execution.Status.SUCCEEDED,
                started_at=start + dt.timedelta(minutes=index),
                finished_at=start + dt.timedelta(minutes=index, seconds=40),
                params={
                    "dataset.name": "boston_housing",
                    "training.batch_size": batch,
                    "model.compilation.optimizer.type": optimizer,
                },  # fmt: skip
            )
            base = 30.0 - batch / 8 - (5 if optimizer == "adam" else 0)
            execution.set_metrics({"loss": [base * 2, base * 1.5], "val_loss": [base * 2.2, base]})
            execution.save()
            index += 1


def table_runs(page):
    return page.eval_on_selector_all("#executions tbody strong", "(cells) => cells.map((c) => c.textContent)")


def wait_for_chart(page):
    page.wait_for_selector("#explore[data-loaded='1']", timeout=120_000)
    page.wait_for_function(
        "() => document.querySelector('#parallel .js-plotly-plot, #parallel.js-plotly-plot') !== null"
    )


def test_a_query_then_a_brushed_axis_narrow_the_table_and_chart_controls_are_remembered(
    live_server, browser, owner, root
):
    grid()
    trained = make_run(root, "06-16-31__08-04-2019", owner=owner)
    make_run(root, OTHER_RUN, owner=owner)
    shot = Shots("search")
    page = logged_in(browser, live_server.url, owner)
    page.context.set_default_timeout(90_000)  # a loaded machine stretches every step
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # --- the table shows the params that differ, not the dataset every run shares ----------------
    page.goto("/experiments/grid/")
    header = page.text_content("#executions thead")
    assert "training.batch_size" in header
    assert "optimizer.type" in header
    assert "dataset.name" not in header
    assert len(table_runs(page)) == 12
    wait_for_chart(page)
    shot(page, "experiment")

    # --- type a query: the table narrows, the address holds it -------------------------------
    page.fill("#q", 'params.training.batch_size >= 32 and params.model.compilation.optimizer.type != "rmsprop"')
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r".*\?.*q=params"))
    narrowed = table_runs(page)
    assert len(narrowed) == 6, narrowed
    assert "6 runs matching the filter" in page.inner_text("#run-count")
    wait_for_chart(page)
    shot(page, "query")

    # --- a wrong query says where, and nothing breaks ----------------------------------------
    # (checked through the page the browser got back, then back to the narrowed table)
    wrong = page.context.new_page()
    wrong.goto("/experiments/grid/?q=" + "params.training.batch_size%20%3E%3D")
    assert "col 30: expected a value after '>='" in wrong.inner_text("#query-error")
    wrong.close()

    # --- drag along the batch-size axis: keep the big batches ----------------------------------
    dimensions = page.evaluate("() => document.getElementById('parallel').data[0].dimensions.map((d) => d.label)")
    axis = dimensions.index("training.batch_size")  # an axis titled by the param's last parts
    page.locator("#parallel").scroll_into_view_if_needed()
    box = page.evaluate(
        """(axis) => {
            const rects = document.querySelectorAll('#parallel .axis-brush .background');
            const r = rects[axis].getBoundingClientRect();
            return {x: r.x + r.width / 2, top: r.y, height: r.height};
        }""",
        axis,
    )
    # Values 32..128 from bottom to top: drag over the top third (96 and up) of the axis.
    page.mouse.move(box["x"], box["top"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"], box["top"] + box["height"] * 0.2, steps=5)
    page.mouse.move(box["x"], box["top"] + box["height"] * 0.35, steps=5)
    page.mouse.up()
    page.wait_for_url(re.compile(r".*rmsprop%22%29\+and\+params.*"), timeout=120_000)
    query = parse_qs(urlparse(page.url).query)["q"][0]
    # The range as the runs' own values: the top of the axis is the biggest batch.
    assert query == (
        '(params.training.batch_size >= 32 and params.model.compilation.optimizer.type != "rmsprop") '
        "and params.training.batch_size = 128"
    )
    again = table_runs(page)
    assert 0 < len(again) < len(narrowed), (query, again)
    batches = {
        Execution.objects.get(folder_name=name, experiment__name="grid").params["training.batch_size"] for name in again
    }
    assert batches == {128}, (query, again)
    assert page.input_value("#q") == query
    wait_for_chart(page)
    shot(page, "brushed")

    # --- chart controls on a run's page: log y, smoothing, wall time; remembered -----------------
    page.goto(f"/experiments/boston_housing/executions/{trained.folder_name}/")
    page.wait_for_function("() => { const c = document.getElementById('chart-loss'); return c && c.data; }")
    page.check("#chart-log")
    page.fill("#chart-smoothing", "0.6")
    page.dispatch_event("#chart-smoothing", "input")
    page.select_option("#chart-x", "time")
    chart = page.evaluate(
        """() => {
            const c = document.getElementById('chart-loss');
            const traces = c.data.map((t) => ({name: t.name, opacity: t.opacity, x: t.x.slice(0, 2),
                                               y: t.y.slice(0, 2)}));
            return {axis: c.layout.yaxis.type, title: c.layout.xaxis.title.text, traces: traces};
        }"""
    )
    assert chart["axis"] == "log"
    assert chart["title"] == "seconds from start (estimated)"
    raw, smoothed = chart["traces"][0], chart["traces"][1]
    assert raw["opacity"] == 0.25
    assert smoothed["name"] == "loss"
    assert raw["y"][0] == smoothed["y"][0]
    assert raw["y"][1] != smoothed["y"][1]  # the second point is pulled toward the first
    assert raw["x"][0] > 0.78  # seconds after the data loaded (the first stage took 0.78 s), not epoch 1
    shot(page, "execution-controls")
    page.reload()
    page.wait_for_function("() => { const c = document.getElementById('chart-loss'); return c && c.data; }")
    assert page.is_checked("#chart-log")
    assert page.input_value("#chart-smoothing") == "0.6"
    assert page.input_value("#chart-x") == "time"
    assert page.evaluate("() => document.getElementById('chart-loss').layout.yaxis.type") == "log"

    # --- and on the compare page, as left ---------------------------------------------------------
    other = Execution.objects.get(folder_name=OTHER_RUN)
    page.goto(f"/compare/?runs={trained.pk},{other.pk}")
    page.wait_for_selector("#charts .js-plotly-plot")
    assert page.is_checked("#chart-log")
    compare = page.evaluate(
        """() => { const c = document.querySelector('#charts .js-plotly-plot');
                   return {axis: c.layout.yaxis.type, traces: c.data.length, faint: c.data[0].opacity}; }"""
    )
    assert compare == {"axis": "log", "traces": 4, "faint": 0.25}  # two runs, each raw and smoothed
    page.uncheck("#chart-log")
    assert page.evaluate("() => document.querySelector('#charts .js-plotly-plot').layout.yaxis.type") == "linear"
    shot(page, "compare-controls")
    assert errors == []
