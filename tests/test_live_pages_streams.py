"""The compare page's and the sweep page's streams, and the system samples' events, over a real ASGI server and a
real Redis (issue 24: every live page listens).

Events are published by the code paths that publish them in production (a transition, a trial told to the study,
a sweep cancelled, a system sample written by a training's sampler) and read as a browser's EventSource reads them.
"""

import pytest
import requests

from experiments import live
from experiments.models import Execution, Experiment, Project
from sweeps import advance
from sweeps.launching import launch_sweep
from sweeps.models import Sweep, Trial
from tests.folders import make_run
from tests.helpers import tiny
from tests.test_live_stream import Events, events_redis, later, logged_in_cookies, running

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["events_redis"]  # the autouse fixture: the events go through the test Redis

PASSWORD = "pw-olivia-123"


def test_the_compare_pages_stream_sends_only_the_compared_runs(asgi_server, root, trained, owner):
    other = running(make_run(root, "06-16-32__08-04-2019", owner=owner))
    compared = running(trained)
    cookie = logged_in_cookies(asgi_server.url, owner, PASSWORD)
    stream = Events(f"{asgi_server.url}/events/runs?runs={compared.pk}", Cookie=cookie)
    try:
        later(lambda: (Execution.objects.cancel(other.pk), Execution.objects.cancel(compared.pk)))
        event, data, _, _ = stream.until("run")
        assert (event, data["run"], data["status"]) == ("run", compared.pk, "cancelled")  # the other's came first
    finally:
        stream.close()


def test_a_compared_run_the_user_may_not_see_is_not_streamed(asgi_server, root, trained, owner):
    secret_run = make_run(root, "07-00-00__09-04-2019", dataset="iris")
    Experiment.objects.filter(pk=secret_run.experiment_id).update(project=Project.objects.create(name="secret"))
    hidden, shown = running(secret_run), running(trained)
    cookie = logged_in_cookies(asgi_server.url, owner, PASSWORD)  # of default only
    stream = Events(f"{asgi_server.url}/events/runs?runs={hidden.pk},{shown.pk}", Cookie=cookie)
    try:
        later(lambda: (Execution.objects.cancel(hidden.pk), Execution.objects.cancel(shown.pk)))
        event, data, _, _ = stream.until("run")
        assert (event, data["run"]) == ("run", shown.pk)
    finally:
        stream.close()


@pytest.fixture
def sweep(owner, trained):
    made = launch_sweep(
        {
            "name": "width",
            "base": tiny(),
            "parameters": {"model.network[0].units": {"choice": [4, 8]}},
            "method": "random",
            "trials": 2,
        },
        user=owner,
    )
    Trial.objects.create(sweep=made, number=0, execution=running(trained), params={"model.network[0].units": 4})
    return made


def test_the_sweep_pages_stream_follows_its_trials_until_the_sweep_ends(asgi_server, root, sweep, trained, owner):
    outsider_run = running(make_run(root, "06-16-32__08-04-2019", owner=owner))  # not a trial of this sweep
    cookie = logged_in_cookies(asgi_server.url, owner, PASSWORD)
    stream = Events(f"{asgi_server.url}/sweeps/{sweep.pk}/events", Cookie=cookie)
    try:
        later(lambda: (Execution.objects.cancel(outsider_run.pk), Execution.objects.cancel(trained.pk)))
        event, data, _, _ = stream.until("run")
        assert (event, data["run"], data["status"]) == ("run", trained.pk, "cancelled")
        later(lambda: advance.tell_ended(Sweep.objects.get(pk=sweep.pk)), delay=0.1)  # as the sweep's job tells it
        event, data, _, _ = stream.until("trial")
        assert data == {"run": trained.pk, "number": 0, "status": "cancelled", "value": None, "best": False}
        later(lambda: Sweep.objects.cancel(sweep.pk), delay=0.1)
        event, data, _, seen = stream.until("end")
        assert seen[-2:] == ["sweep", "end"]
        assert stream.next() == (None, None, None)  # the stream closed
    finally:
        stream.close()


def test_a_trial_told_with_a_new_best_says_so(asgi_server, sweep, trained, owner):
    Execution.objects.filter(pk=trained.pk).update(status="succeeded")
    cookie = logged_in_cookies(asgi_server.url, owner, PASSWORD)
    stream = Events(f"{asgi_server.url}/sweeps/{sweep.pk}/events", Cookie=cookie)
    try:
        later(lambda: advance.tell_ended(Sweep.objects.get(pk=sweep.pk)))
        event, data, _, _ = stream.until("trial")
        best = min(trained.history("val_loss"))  # the sweep minimises the best val_loss (its defaults)
        assert data["status"] == "succeeded"
        assert data["best"] is True
        assert data["value"] == pytest.approx(best)
    finally:
        stream.close()


def test_the_sweep_stream_is_refused_to_strangers_and_unknown_sweeps(asgi_server, sweep, owner):
    # Each role's answer: tests/test_permission_matrix.py (a sweep of a project the user is not in: 404).
    anonymous = requests.get(f"{asgi_server.url}/sweeps/{sweep.pk}/events", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302
    cookie = logged_in_cookies(asgi_server.url, owner, PASSWORD)
    unknown = requests.get(f"{asgi_server.url}/sweeps/999999/events", headers={"Cookie": cookie}, timeout=10)
    assert unknown.status_code == 404


def test_a_system_sample_reaches_the_run_pages_stream_with_non_finite_figures_as_null(asgi_server, trained, owner):
    execution = running(trained)
    cookie = logged_in_cookies(asgi_server.url, owner, PASSWORD)
    stream = Events(f"{asgi_server.url}/executions/{execution.pk}/events", Cookie=cookie)
    try:
        sample = {"time": 5.0, "cpu_percent": float("nan"), "memory_mb": 612.3}
        later(lambda: live.publish(execution.pk, live.SYSTEM, sample=sample))
        event, data, _, _ = stream.until("system")
        assert data == {"time": 5.0, "cpu_percent": None, "memory_mb": 612.3}
    finally:
        stream.close()


def test_unknown_kinds_are_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="system"):
        live.publish(1, "systems")
    with pytest.raises(ValueError, match="trial"):
        live.publish_sweep(1, "trials")
