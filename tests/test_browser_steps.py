"""The run page's per-step charts (#27): drawn from the API at most 2,000 points a line with the spike kept,
and a zoom (Plotly's relayout) fetches that range again at full resolution."""

import pytest

from experiments.index.sync import sync_trainings
from experiments.models import Execution
from experiments.pipeline.steps import STEPS_FILE, StepWriter
from tests.browser import Shots, logged_in
from tests.folders import permalink, write_execution
from tests.helpers import tiny

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPIKE = 61_234
CHART = "[data-step-metric='loss']"


def test_zooming_a_step_chart_fetches_that_range_at_full_resolution(live_server, browser, root, owner):
    folder = write_execution(root)
    writer = StepWriter(folder / STEPS_FILE, flush_points=50_000)
    for step in range(1, 100_001):
        writer.append(step, {"loss": 50.0 if step == SPIKE else 1.0 + (step % 7) / 10})
        if step % 10_000 == 0:
            writer.epoch_end(step)
    writer.close()
    sync_trainings(root)
    execution = Execution.objects.select_related("experiment").get()
    page = logged_in(browser, live_server.url, owner)
    shot = Shots("steps")
    page.goto(permalink(execution))
    page.wait_for_selector(f"{CHART}[data-points]")
    chart = page.locator(CHART)
    assert chart.get_attribute("data-downsampled") == "true"
    assert int(chart.get_attribute("data-points") or 0) <= 2000
    drawn = page.evaluate("() => document.querySelector(\"[data-step-metric='loss']\").data[0].y")
    assert 50.0 in drawn  # the one-step spike survives the first draw
    shot(page, "first-draw")
    page.evaluate(
        """([from, to]) => Plotly.relayout(document.querySelector("[data-step-metric='loss']"),
                                           {"xaxis.range[0]": from, "xaxis.range[1]": to})""",
        [SPIKE - 500, SPIKE + 500],
    )
    page.wait_for_selector(f"{CHART}[data-downsampled='false']")
    assert chart.get_attribute("data-points") == "1001"  # every step from 60,734 to 61,734
    zoomed = page.evaluate("() => document.querySelector(\"[data-step-metric='loss']\").data[0].x")
    assert zoomed[0] == SPIKE - 500
    assert zoomed[-1] == SPIKE + 500
    shot(page, "zoomed")
    page.check("#chart-log")  # the page's chart controls apply to the step charts too
    page.wait_for_function("() => document.querySelector(\"[data-step-metric='loss']\").layout.yaxis.type === 'log'")
    start = page.evaluate("() => document.querySelector(\"[data-step-metric='loss']\").layout.xaxis.range[0]")
    assert start == SPIKE - 500  # the zoom is kept


def test_a_running_runs_step_chart_grows_while_it_trains(live_server, browser, root, owner):
    folder = write_execution(root)
    writer = StepWriter(folder / STEPS_FILE, flush_seconds=3600)
    for step in range(1, 1001):
        writer.append(step, {"loss": 1.0})
    writer.flush()
    sync_trainings(root)
    execution = Execution.objects.select_related("experiment").get()
    config = tiny()
    config["training"]["log_every_steps"] = 1
    Execution.objects.filter(pk=execution.pk).update(status=Execution.Status.RUNNING, config=config, steps={})
    page = logged_in(browser, live_server.url, owner)
    page.goto(permalink(execution))
    page.wait_for_selector(f"{CHART}[data-points='1000']")
    for step in range(1001, 5001):
        writer.append(step, {"loss": 2.0})
    writer.flush()  # what the engine does every second while the run trains
    page.wait_for_selector(f"{CHART}[data-downsampled='true']")
    last = page.evaluate("() => document.querySelector(\"[data-step-metric='loss']\").data[0].x.slice(-1)[0]")
    assert last == 5000
    writer.close()
