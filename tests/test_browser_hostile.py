"""Hostile names and text on every page, in a real browser: nothing runs, and the policy is never violated.

A run folder and a teammate set many strings the pages show: the experiment's and the run's folder
names, the title, tags and notes, metric names, the config's params (``tracking.params``), the
evaluation report's class and layer names, the hardware, the log, a sweep's name, parameters and
choices. Each gets markup that runs script if it is ever put on a page as HTML
(``"><img src=x onerror=...><script>...</script>``), and Chromium opens every page that shows it.
The test fails on any script that runs (the payloads assign ``window.__pwned``, which reports the
assignment) and on any Content-Security-Policy violation (a ``securitypolicyviolation`` event, or
Chromium's console error for one): with the policy in place a slip in escaping is blocked, and the
violation still fails the test. Screenshots: test-artifacts/screenshots/hostile-NN-<page>.png.
"""

import json
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission, User

from experiments.curation.trash import delete
from experiments.index.sync import sync_trainings
from experiments.models import Execution, ShareLink
from sweeps.models import Sweep, Trial
from tests.browser import Shots, logged_in
from tests.folders import LONG_METRICS, permalink, write_execution
from tests.helpers import seed_config

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def payload(n):
    """Markup that sets ``window.__pwned`` to ``n`` if a page ever treats it as HTML, in an attribute or as text."""
    return f"\"'><img src=x onerror=window.__pwned={n}><script>window.__pwned={n}</script><b>&amp;{{{{ x }}}}"


HOSTILE = payload(1)
# A folder name holds no "/", so no closing tag; a tag has at most 64 characters and no comma.
FOLDER = "\"'><img src=x onerror=window.__pwned=2>&amp;"
EXPERIMENT = "\"'><svg onload=window.__pwned=3>"
TAG = "\"'><img src=x onerror=window.__pwned=4>"
NOTES = (
    f'{payload(5)}\n\n[a link](javascript:window.__pwned=6) <a href="javascript:window.__pwned=7">x</a>'
    '\n\n<iframe srcdoc="<script>parent.__pwned=8</script>"></iframe> <img src=x onerror=window.__pwned=9>'
)
PARAM = "\"'><img src=x onerror=window.__pwned=10>"
CLASSES = [payload(11), "<b>bold</b>", "plain"]
METRIC = "<img src=x onerror=window.__pwned=12>"  # refused by sync: the folder's error names it

# Before any page script: an assignment to window.__pwned reports itself, and so does every violation.
WATCH = """
(() => {
  let value;
  Object.defineProperty(window, "__pwned", {
    configurable: false,
    get() { return value; },
    set(v) { value = v; window.__gymnosReport("script ran: window.__pwned = " + v + " on " + location.pathname); },
  });
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__gymnosReport("CSP violation on " + location.pathname + ": " + e.violatedDirective + " blocked "
      + (e.blockedURI || "inline") + " (" + e.sourceFile + ":" + e.lineNumber + ") " + (e.sample || ""));
  });
})();
"""


def watched(page, found):
    """Report script runs, violations, uncaught errors and console errors of ``page``'s context into ``found``."""
    context = page.context
    context.expose_function("__gymnosReport", lambda text: found.append(text))
    context.add_init_script(WATCH)
    context.on(
        "weberror", lambda error: found.append(f"uncaught error on {error.page and error.page.url}: {error.error}")
    )
    context.on("console", lambda message: message.type == "error" and found.append(f"console: {message.text}"))
    page.reload()  # the init script applies from the next document on


def hostile_run(root, owner):
    """A finished run whose every folder-given string is hostile (and a metric name sync refuses)."""
    config = seed_config()
    config["experiment"]["name"] = HOSTILE
    config["experiment"]["tags"] = [TAG]
    config["tracking"] = {"params": {PARAM: HOSTILE, "plain": HOSTILE, "rate": 0.1}}
    metrics = json.loads(json.dumps(LONG_METRICS))
    metrics["metrics"][METRIC] = [1.0] * 15
    metrics["hardware"]["cpu"]["model"] = HOSTILE
    metrics["hardware"]["gpus"] = [{"name": HOSTILE, "memory_bytes": 1 << 30}]
    folder = write_execution(root, name=FOLDER, dataset=EXPERIMENT, config=config, metrics=metrics)
    (folder / "execution.log").write_text(f"2019-04-08 06:16:29,724 - gymnosd - INFO - Main - {HOSTILE}\n")
    (folder / "curation.json").write_text(json.dumps({"title": HOSTILE, "notes": NOTES, "tags": [TAG, "plain"]}))
    (folder / "evaluation.json").write_text(json.dumps(evaluation_report()))
    return folder


def evaluation_report():
    """A classification report (the shape the engine writes) whose class and layer names are hostile."""
    three = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    return {
        "task": "classification", "split": "test", "samples": 3, "evaluated": 3, "task_from": HOSTILE,
        "split_note": HOSTILE, "headline": {"accuracy": 1.0, "macro_f1": 1.0, HOSTILE: 0.5},
        "classification": {
            "accuracy": 1.0,
            "confusion_matrix": {"labels": CLASSES, "counts": three, "normalized": three},
            "curves": {
                "kind": "binary", "positive": HOSTILE,
                "roc": [{"class": c, "fpr": [0, 1], "tpr": [0, 1], "auc": 0.5} for c in CLASSES],
                "pr": [{"class": c, "recall": [0, 1], "precision": [1, 0], "average_precision": 0.5} for c in CLASSES],
            },
            "per_class": [{"class": c, "precision": 1, "recall": 1, "f1": 1, "support": 1} for c in CLASSES],
            "averages": {"macro": {"precision": 1, "recall": 1, "f1": 1}, "weighted": {"f1": 1}},
            "most_confused": [{"actual": CLASSES[0], "predicted": CLASSES[1], "count": 1, "share": 0.5}],
        },
        "not_computed": [{"what": HOSTILE, "why": HOSTILE}],
        "model": {
            "params": {"total": 1, "trainable": 1, "non_trainable": 0},
            "layers": [{"name": HOSTILE, "type": HOSTILE, "output_shape": [None, 1], "params": 1,
                        "trainable": 1, "non_trainable": 0}],
            "layers_total": 1,
        },
    }  # fmt: skip


def hostile_sweep(owner, run):
    parameters = {
        f"tracking.params.{PARAM}": {"choice": [HOSTILE, payload(13)]},
        "tracking.params.rate": {"distribution": "log_uniform", "low": 0.01, "high": 1.0},
    }
    sweep = Sweep.objects.create(
        name=payload(14), status=Sweep.State.FINISHED, method="random", trials_total=2, parallel=1,
        document={"name": payload(14), "base": run.pk, "parameters": parameters, "method": "random", "trials": 2},
        base_config=run.config, base_execution=run, metric="val_loss", which="best", direction="minimize",
        study_name="gymnos-sweep-hostile", seed=0, queue="default", created_by=owner, error=HOSTILE,
        importance={f"tracking.params.{PARAM}": 0.7, "tracking.params.rate": 0.3},
    )  # fmt: skip
    Trial.objects.create(
        sweep=sweep, number=0, execution=run, value=7.5, outcome="succeeded",
        params={f"tracking.params.{PARAM}": HOSTILE, "tracking.params.rate": 0.1},
    )  # fmt: skip
    Trial.objects.create(
        sweep=sweep, number=1, value=9.5, outcome="pruned", error=HOSTILE,
        params={f"tracking.params.{PARAM}": payload(13), "tracking.params.rate": 0.5},
    )  # fmt: skip
    return sweep


@pytest.fixture
def hostile(root, owner, real_queues):
    """Two hostile runs (one in the trash), a queued one, a share link and a sweep; the owner may curate."""
    owner.user_permissions.add(*Permission.objects.filter(codename__in=["change_execution", "delete_execution"]))
    hostile_run(root, owner)
    second = write_execution(root, name=FOLDER + "2", dataset=EXPERIMENT, config=seed_config())
    (second / "curation.json").write_text(json.dumps({"title": payload(15), "tags": [TAG]}))
    sync_trainings(root)
    run, other = Execution.objects.select_related("experiment").order_by("folder_name")
    Execution.objects.filter(pk__in=[run.pk, other.pk]).update(launched_by=owner)
    # A metric name in the index that the rule refuses (indexed before the rule, or by a path that skips it):
    # the pages still run nothing. The receiver's form checks names; its model method does not.
    Execution.objects.record_posted_epoch(other.pk, 0, {METRIC: 1.0})
    third = write_execution(root, name=FOLDER + "3", dataset=EXPERIMENT, config=seed_config())
    sync_trainings(root)
    trashed = Execution.objects.get(folder_name=third.name)
    delete(trashed, actor=owner)
    queued = Execution.objects.create(
        experiment=run.experiment, status="queued", title=HOSTILE, launched_by=owner, config=run.config
    )
    link = ShareLink.objects.create(kind=ShareLink.Kind.EXECUTION, execution=run, created_by=owner)
    return {"run": run, "other": other, "queued": queued, "link": link, "sweep": hostile_sweep(owner, run)}


def visit(page, shot, path, name, ready=None):
    page.goto(path)
    page.wait_for_load_state("networkidle")
    if ready:
        page.wait_for_selector(ready, state="attached")
    shot(page, name)


def test_hostile_strings_from_folders_and_people_run_nothing_on_any_page(live_server, browser, owner, hostile):
    from playwright.sync_api import expect

    run, other = hostile["run"], hostile["other"]
    found: list[str] = []
    page = logged_in(browser, live_server.url, owner)
    page.context.set_default_timeout(90_000)  # the machine is shared: Plotly pages load slowly under load
    watched(page, found)
    shot = Shots("hostile")

    # The hostile names did arrive: as text, where a person reads them.
    visit(page, shot, "/", "experiments", "#disk-list li")
    expect(page.locator("table")).to_contain_text(EXPERIMENT)

    experiment = f"/experiments/{quote(EXPERIMENT, safe='')}/"
    param = f"params.tracking.params.`{PARAM}`"
    visit(page, shot, experiment + "?cols=" + quote(f"{param},params.tracking.params.plain", safe=""),
          "experiment", "#explore[data-loaded]")  # fmt: skip
    expect(page.locator("#compare-form table")).to_contain_text(FOLDER)
    expect(page.locator("#compare-form table")).to_contain_text(TAG)
    # Explore: the hostile param as the scatter's x and the group-by; the parallel coordinates draw it as an axis.
    page.select_option("#explore-x", f"params.tracking.params.{PARAM}")
    page.select_option("#explore-group", "params.tracking.params.plain")
    expect(page.locator("#groups tbody")).to_contain_text(HOSTILE)
    page.locator("#scatter").hover()
    shot(page, "explore")
    # The metric no run draws a line for with these axes: explore.js says so, naming it (once as HTML).
    page.select_option("#explore-metric", f"metrics.{METRIC}")
    page.wait_for_selector("#parallel p")
    page.wait_for_load_state("networkidle")  # an <img src=x> made of the name would have failed to load by now
    assert found == [], "\n".join(found)
    expect(page.locator("#parallel")).to_contain_text(f"No run here has every shown param and {METRIC}.")
    shot(page, "explore-metric")

    visit(page, shot, permalink(run), "run", "#evaluation-matrix .main-svg")
    expect(page.locator("h1 + p")).to_contain_text(HOSTILE)
    expect(page.locator("#notes-body")).to_contain_text("a link")
    expect(page.locator("#evaluation-tables")).to_contain_text(CLASSES[0])
    expect(page.locator("#log")).to_contain_text(HOSTILE)
    expect(page.locator("#status")).to_contain_text("metrics.json: the metric name")
    page.locator("#evaluation-matrix").hover()

    visit(page, shot, permalink(other), "other-run", f"#charts [data-metric='{METRIC}'] .main-svg")
    visit(page, shot, f"/compare/?runs={run.pk},{other.pk}", "compare", "#compare-evaluation-charts .main-svg")
    visit(page, shot, f"/runs/bulk/?action=tag&runs={run.pk},{other.pk}&next=/", "bulk")
    visit(page, shot, f"/runs/new/?from={run.pk}", "new-run")
    visit(page, shot, f"/sweeps/new/?from={run.pk}", "new-sweep")
    visit(page, shot, "/sweeps/", "sweeps")
    expect(page.locator("table")).to_contain_text(payload(14))
    visit(page, shot, f"/sweeps/{hostile['sweep'].pk}/", "sweep", "#parcoords-chart .main-svg")
    visit(page, shot, "/queue/", "queue")
    expect(page.locator("#queue")).to_contain_text(HOSTILE)
    visit(page, shot, "/trash/", "trash")
    expect(page.locator("#trash-table")).to_contain_text(FOLDER + "3")
    visit(page, shot, "/shares/", "shares")

    # A visitor without an account, on the share link.
    visitor = browser.new_context(base_url=live_server.url).new_page()
    watched(visitor, found)
    visit(visitor, shot, f"/s/{hostile['link'].token}/", "shared", "#evaluation-matrix .main-svg")
    expect(visitor.locator("#log")).to_contain_text(HOSTILE)

    assert found == [], "\n".join(found)


def test_the_admin_django_rq_and_the_api_docs_work_under_the_policy(live_server, browser, hostile):
    import django_rq
    from playwright.sync_api import expect

    User.objects.create_superuser("root", password="pw-root-123")
    django_rq.get_queue("default").enqueue("builtins.print", HOSTILE)  # a row on django-rq's queue page
    found: list[str] = []
    page = logged_in(browser, live_server.url, User.objects.get(username="root"), password="pw-root-123")
    watched(page, found)
    shot = Shots("hostile-admin")
    visit(page, shot, "/admin/", "admin")
    visit(page, shot, "/admin/experiments/execution/", "executions")
    expect(page.locator("#result_list")).to_contain_text(FOLDER)
    visit(page, shot, f"/admin/experiments/execution/{hostile['run'].pk}/change/", "execution")
    visit(page, shot, "/admin/rq/", "rq")
    visit(page, shot, "/admin/rq/queues/0/", "rq-queue")
    page.check("#action-toggle")  # django-rq's own inline script wires the "select all" box
    expect(page.locator("tr input.action-select").first).to_be_checked()
    visit(page, shot, "/api/docs", "api-docs", "#swagger-ui .information-container")
    unexpected = [line for line in found if not django_rq_own(line)]
    assert unexpected == [], "\n".join(unexpected)


# django-rq's queue pages carry one inline script, a jQuery call ($(...).actions()) that Django 5's
# admin/js/actions.js no longer offers: the policy blocks it (it would throw anyway), and actions.js
# wires the checkboxes itself; that file then fails on a counter django-rq's template lacks.
DJANGO_RQ_SCRIPT = "sha256-1kZe1KRxelr3ptMPsod17Z6BDvbtm4WcufgsZGvsErM="


def django_rq_own(line):
    return (
        DJANGO_RQ_SCRIPT in line
        or line.startswith("CSP violation on /admin/rq/")
        and "script-src-elem blocked inline" in line
        or "/admin/rq/" in line
        and "reading 'dataset'" in line
    )
