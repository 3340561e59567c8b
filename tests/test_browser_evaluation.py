"""The Evaluation panels in a real browser (Playwright driving Debian's Chromium) on two iris runs trained here:
the run page draws the confusion matrix as a heatmap with its curves and per-class table, the compare page
draws both runs' matrices on one colour scale and adds the headline numbers to the Runs table, and a share
link shows the panel too. Screenshots go to test-artifacts/screenshots/evaluation-*.png."""

import copy
import shutil

import pytest
from django.utils import timezone

from experiments.index.sync import sync_trainings
from experiments.models import Execution, ShareLink
from experiments.pipeline import load_config, run_experiment
from tests.browser import Shots, logged_in
from tests.folders import permalink
from tests.helpers import tiny
from tests.test_evaluation_views import IRIS

pytestmark = [pytest.mark.browser, pytest.mark.training, pytest.mark.django_db(transaction=True)]

HEATMAP = """(id) => {
    const div = document.getElementById(id);
    if (!div || !div.data || !div.data.length) return null;
    const t = div.data[0];
    return {type: t.type, rows: t.z.length, cols: t.z[0].length, total: t.text.flat().reduce((a, b) => a + b, 0),
            zmin: t.zmin, zmax: t.zmax, x: t.x};
}"""


@pytest.fixture
def iris_runs(root, tmp_path):
    """Two finished iris runs (different seeds), indexed."""
    for seed in (0, 1):
        config = copy.deepcopy(IRIS)
        config["training"]["seed"] = seed
        result = run_experiment(load_config(config), trainings_root=root, cache_dir=tmp_path / "cache")
        assert result.succeeded, result.error
    sync_trainings(root)
    return list(Execution.objects.select_related("experiment").order_by("pk"))


def test_the_evaluation_panels_draw_heatmaps_on_a_run_a_comparison_and_a_share_link(
    live_server, browser, owner, iris_runs, root
):
    from playwright.sync_api import expect

    first, second = iris_runs
    errors = []
    shot = Shots("evaluation")
    page = logged_in(browser, live_server.url, owner)
    page.context.on("weberror", lambda error: errors.append(str(error.error)))

    # --- the run's page: heatmap, curves, per-class table, model ----------------------------------------
    page.goto(permalink(first))
    page.wait_for_function("() => document.querySelector('#evaluation-matrix .main-svg')")
    heatmap = page.evaluate(HEATMAP, "evaluation-matrix")
    assert heatmap["type"] == "heatmap"
    assert (heatmap["rows"], heatmap["cols"]) == (3, 3)
    assert heatmap["total"] == 30
    assert heatmap["x"] == ["setosa", "versicolor", "virginica"]
    roc = page.evaluate("() => document.getElementById('evaluation-roc').data.map(t => t.name)")
    assert len(roc) == 4
    assert roc[0].startswith("setosa (AUC ")
    assert roc[-1] == "chance"
    expect(page.locator("#evaluation-headline")).to_contain_text("macro F1")
    expect(page.locator("#evaluation-split")).to_contain_text("classification on the test split (30 of 30 samples)")
    expect(page.locator("#evaluation-tables table").first.locator("tbody tr")).to_have_count(3)
    expect(page.locator("#evaluation-tables")).to_contain_text("virginica")
    expect(page.locator("#evaluation-model")).to_contain_text("Dense")
    expect(page.locator("#evaluation-model")).to_contain_text("model.h5 is ")
    page.locator("#evaluation").scroll_into_view_if_needed()
    shot(page, "run")

    # --- a run still training: the panel waits, and draws the report once the run has ended -----------------
    folder = root / "iris" / "executions" / "12-00-00__01-01-2026"
    shutil.copytree(first.folder_path, folder)
    report = (folder / "evaluation.json").read_bytes()
    (folder / "evaluation.json").unlink()
    sync_trainings(root)
    waiting = Execution.objects.select_related("experiment").get(folder_name=folder.name)
    # As a worker holds it: running, with a fresh heartbeat (set here as a fixture, not a transition under test).
    Execution.objects.filter(pk=waiting.pk).update(status="running", heartbeat_at=timezone.now(), finished_at=None)
    page.goto(permalink(waiting))
    expect(page.locator("#evaluation-empty")).to_have_text("The evaluation report is written when the run ends.")
    (folder / "evaluation.json").write_bytes(report)
    assert Execution.objects.finish(waiting.pk) == "succeeded"
    page.wait_for_function("() => document.querySelector('#evaluation-matrix .main-svg')", timeout=60_000)
    assert page.evaluate(HEATMAP, "evaluation-matrix")["total"] == 30

    # --- the compare page: both matrices on one colour scale, the headline in the Runs table ---------------
    page.goto(f"/compare/?runs={first.pk},{second.pk}")
    page.wait_for_function("() => document.querySelectorAll('#compare-evaluation-charts .main-svg').length >= 2")
    matrices = [page.evaluate(HEATMAP, f"compare-evaluation-{run.pk}") for run in (first, second)]
    assert all(m["type"] == "heatmap" and m["total"] == 30 for m in matrices), matrices
    assert {(m["zmin"], m["zmax"]) for m in matrices} == {(0, 1)}  # the same scale, so colours compare
    header = page.locator("table:has(.swatch) thead tr")
    expect(header).to_contain_text("evaluation.accuracy")
    expect(header).to_contain_text("evaluation.roc_auc")
    for run in (first, second):
        cells = page.locator(f"table:has(.swatch) tbody tr:has(.swatch[data-run='{run.pk}']) td.evaluation-col")
        expect(cells).to_have_text([f"{run.evaluation[name]:.4g}" for name in ("accuracy", "macro_f1", "roc_auc")])
    page.locator("#compare-evaluation").scroll_into_view_if_needed()
    shot(page, "compare")

    # --- a share link, in a fresh browser context without a login ---------------------------------------
    link = ShareLink.objects.create(kind=ShareLink.Kind.EXECUTION, execution=first, created_by=owner)
    visitor = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    visitor.on("weberror", lambda error: errors.append(str(error.error)))
    guest = visitor.new_page()
    guest.goto(f"/s/{link.token}/")
    guest.wait_for_function("() => document.querySelector('#evaluation-matrix .main-svg')")
    assert guest.evaluate(HEATMAP, "evaluation-matrix")["total"] == 30
    guest.locator("#evaluation").scroll_into_view_if_needed()
    shot(guest, "share")
    visitor.close()

    # --- a regression run: predicted vs actual, residuals, their histogram, the worst predictions -----------
    result = run_experiment(load_config(tiny(epochs=2)), trainings_root=root, cache_dir=root.parent / "cache")
    assert result.succeeded, result.error
    sync_trainings(root)
    boston = Execution.objects.select_related("experiment").get(experiment__name="boston_housing")
    page.goto(permalink(boston))
    page.wait_for_function("() => document.querySelectorAll('#evaluation-charts .main-svg').length >= 3")
    drawn = page.evaluate(
        """() => ['evaluation-scatter', 'evaluation-residuals', 'evaluation-histogram'].map(id => {
            const trace = document.getElementById(id).data[0];
            return trace.type === 'bar' ? trace.y.reduce((a, b) => a + b, 0) : trace.x.length;
        })"""
    )
    assert drawn == [101, 101, 101], drawn
    expect(page.locator("#evaluation-headline")).to_contain_text("R²")
    expect(page.locator("#evaluation-tables table tbody tr")).to_have_count(10)  # the worst predictions
    expect(page.locator("#evaluation-tables")).to_contain_text("Rows are the dataset's rows")
    page.locator("#evaluation").scroll_into_view_if_needed()
    shot(page, "regression")
    page.context.close()
    assert not errors, errors
