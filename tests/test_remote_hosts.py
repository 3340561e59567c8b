"""remote_monitor posts only to the hosts GYMNOS_REMOTE_MONITOR_HOSTS lists: a config from the web
must not make a worker post to the services on its network."""

import pytest

from experiments.pipeline import ConfigError, load_config, run_experiment
from tests.helpers import tiny


def problems(callback):
    with pytest.raises(ConfigError) as caught:
        load_config(tiny(callbacks=[callback]))
    return [str(problem) for problem in caught.value.problems]


def accepted(callback):
    load_config(tiny(callbacks=[callback]))
    return True


@pytest.mark.parametrize(
    "root",
    ["http://10.0.0.5:8080", "http://169.254.169.254", "https://example.com"],
)
def test_by_default_a_host_other_than_this_machine_is_named_with_the_variable_to_set(monkeypatch, root):
    monkeypatch.delenv("GYMNOS_REMOTE_MONITOR_HOSTS", raising=False)
    (problem,) = problems({"type": "remote_monitor", "root": root})
    assert problem.startswith("training.callbacks[0].root: cannot post to ")
    assert "GYMNOS_REMOTE_MONITOR_HOSTS" in problem
    assert "it lists: localhost, 127.0.0.1, ::1" in problem


@pytest.mark.parametrize("root", ["http://localhost:8000", "http://127.0.0.1:9000", "http://[::1]:8000", None])
def test_by_default_this_machine_is_allowed_including_keras_default_root(monkeypatch, root):
    monkeypatch.delenv("GYMNOS_REMOTE_MONITOR_HOSTS", raising=False)
    callback = {"type": "remote_monitor"} if root is None else {"type": "remote_monitor", "root": root}
    assert accepted(callback)


def test_the_variable_replaces_the_default_and_may_pin_a_port(monkeypatch):
    monkeypatch.setenv("GYMNOS_REMOTE_MONITOR_HOSTS", "gymnos-host:8000, metrics.internal")
    assert accepted({"type": "remote_monitor", "root": "http://gymnos-host:8000"})
    assert accepted({"type": "remote_monitor", "root": "https://METRICS.internal"})
    (problem,) = problems({"type": "remote_monitor", "root": "http://gymnos-host:8001"})
    assert "cannot post to gymnos-host" in problem
    assert "'gymnos-host:8001'" in problem
    (problem,) = problems({"type": "remote_monitor", "root": "http://localhost:8000"})
    assert "it lists: gymnos-host:8000, metrics.internal" in problem


def test_a_star_allows_any_host_and_an_empty_variable_none(monkeypatch):
    monkeypatch.setenv("GYMNOS_REMOTE_MONITOR_HOSTS", "*")
    assert accepted({"type": "remote_monitor", "root": "http://10.0.0.5:8080"})
    monkeypatch.setenv("GYMNOS_REMOTE_MONITOR_HOSTS", "")
    (problem,) = problems({"type": "remote_monitor", "root": "http://localhost:9000"})
    assert "(it is empty)" in problem


@pytest.mark.training
def test_the_worker_side_checks_again_when_it_builds_the_callback(monkeypatch, trainings, cache_dir, receiver):
    config = load_config(tiny(epochs=1, callbacks=[{"type": "remote_monitor", "root": receiver.root}]))
    monkeypatch.setenv("GYMNOS_REMOTE_MONITOR_HOSTS", "gymnos-host")  # the worker's machine allows less
    result = run_experiment(config, trainings, cache_dir)
    assert not result.succeeded
    assert result.error is not None
    assert "cannot post to 127.0.0.1" in result.error
    assert receiver.received == []


@pytest.mark.training
def test_a_redirect_is_not_followed_and_is_logged(monkeypatch, trainings, cache_dir, receiver, second_receiver):
    monkeypatch.delenv("GYMNOS_REMOTE_MONITOR_HOSTS", raising=False)
    receiver.redirect_to = f"{second_receiver.root}/elsewhere/"
    result = run_experiment(
        load_config(tiny(epochs=2, callbacks=[{"type": "remote_monitor", "root": receiver.root}])), trainings, cache_dir
    )
    assert result.succeeded, result.error
    assert len(receiver.received) == 2
    assert second_receiver.received == []
    assert result.path is not None
    log = (result.path / "execution.log").read_text()
    assert f"redirect to {second_receiver.root}/elsewhere/, which is not followed" in log
