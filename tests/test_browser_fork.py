"""Fork a run from a checkpoint marker on its loss chart (#23): the run form opens prefilled, naming where it trains
on from; the fork trains (the real work horse's code, in this process); its page names its parent and its loss
curve continues the parent's (x = the parent's epoch it started from + its own)."""

import pytest

from experiments.jobs import horse, launching
from experiments.models import Execution
from tests.browser import Shots, logged_in
from tests.helpers import tiny

pytestmark = [pytest.mark.browser, pytest.mark.training, pytest.mark.django_db(transaction=True)]

LOSS = "#chart-loss"


def checkpoint_marker(page, epoch):
    """The checkpoint marker drawn at ``epoch`` on the loss chart (its last trace)."""
    page.wait_for_function(
        "() => { const c = document.querySelector('#chart-loss');"
        " return c && c.data && c.data.some(t => t.name === 'checkpoints'); }"
    )
    index = page.evaluate(
        "(epoch) => document.querySelector('#chart-loss').data.find(t => t.name === 'checkpoints').x.indexOf(epoch)",
        epoch,
    )
    assert index >= 0
    return page.locator(f"{LOSS} .scatterlayer .trace").last.locator("path.point").nth(index)


def test_a_fork_from_a_checkpoint_marker_continues_its_parents_curve(
    live_server, browser, root, owner, settings, real_queues
):
    settings.GYMNOS_CACHE_DIR = root.parent / "cache"
    config = tiny(epochs=5, callbacks=[{"type": "model_checkpoint", "filepath": "weights.{epoch:02d}.h5"}])
    config["model"]["compilation"]["optimizer"] = {"type": "adam", "learning_rate": 0.05}
    parent = launching.launch(config, trusted=True, check=lambda checked: [])
    assert horse.run(parent.pk) == "succeeded"

    page = logged_in(browser, live_server.url, owner)
    shot = Shots("fork")
    page.goto(f"/executions/{parent.pk}/")
    marker = checkpoint_marker(page, 3)
    shot(page, "parent")
    # Plotly hears the mouse on the layer above its markers: the pointer goes where the marker is drawn.
    marker.scroll_into_view_if_needed()
    marker.hover(force=True)
    page.wait_for_function("() => document.querySelector('#chart-loss')._hoverdata !== undefined")
    marker.click(force=True)
    page.wait_for_url(lambda url: "/runs/new/" in url)
    assert "its checkpoint at epoch 3" in page.locator("#fork-source").inner_text()
    page.fill("#id_epochs", "2")
    shot(page, "form")
    page.click("button:has-text('Train on from here')")
    page.wait_for_url(lambda url: "/runs/new/" not in url)
    child = Execution.objects.get(parent=parent)
    assert child.forked_at_epoch == 3
    assert horse.run(child.pk) == "succeeded"

    page.reload()
    assert "at its epoch 3" in page.locator("#lineage-parent").inner_text()
    page.wait_for_function(
        "() => { const c = document.querySelector('#chart-loss');"
        " return c && c.data && c.data.some(t => t.name === 'parent loss') && c.data.some(t => t.name === 'loss'); }"
    )
    traces = page.evaluate(
        "() => Object.fromEntries(document.querySelector('#chart-loss').data.map(t => [t.name, [t.x, t.y]]))"
    )
    assert traces["parent loss"][0] == [1, 2, 3, 4, 5]
    assert traces["loss"][0] == [4, 5]  # the child's epochs 1 and 2, after the parent's epoch 3
    # Continuing, not starting over: the child's first epoch is near the parent's loss at its epoch 3.
    parent_at_3, child_first = traces["parent loss"][1][2], traces["loss"][1][0]
    assert abs(child_first - parent_at_3) < abs(traces["parent loss"][1][0] - parent_at_3)
    shot(page, "child")
    page.uncheck("#continue-parent")  # its own epochs again
    page.wait_for_function("() => document.querySelector('#chart-loss').data.every(t => t.name !== 'parent loss')")
    assert page.evaluate("() => document.querySelector('#chart-loss').data.find(t => t.name === 'loss').x") == [1, 2]

    child.refresh_from_db()
    page.goto(f"/executions/{parent.pk}/")
    assert f"{child.folder_name} from epoch 3" in page.locator("#lineage-children").inner_text()
