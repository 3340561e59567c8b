"""The build checker's fork server is shared with the processes forked after it started (a worker's work horses):
they check through it, and start one of their own only when it no longer answers."""

import json
import os
import signal

import pytest

from experiments.pipeline import load_config
from experiments.pipeline.isolated_check import IsolatedChecker, _server
from tests.helpers import tiny
from tests.workers import wait_for

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def checker():
    checker = IsolatedChecker()
    checker.warm_up(wait=True)
    return checker


def check_in_a_forked_child(checker, config):
    """What a check answers in a child forked now (as a worker forks a horse), and which fork server it used."""
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            problems = checker.problems(load_config(config), 256, 60)
            answer = {"problems": [problem.message for problem in problems], "server": _server()._forkserver_pid}
        except BaseException as exc:  # noqa: BLE001 - said to the parent, whose assertion then shows it
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            os.write(writing, json.dumps(answer).encode())
        finally:
            os._exit(0)
    os.close(writing)
    os.waitpid(pid, 0)
    with os.fdopen(reading) as answered:
        return json.loads(answered.read())


def test_a_forked_process_checks_through_the_fork_server_its_parent_started(checker):
    parents = _server()._forkserver_pid
    huge = tiny()
    huge["model"]["network"][0]["units"] = 10_000_000
    assert check_in_a_forked_child(checker, tiny()) == {"problems": [], "server": parents}
    answer = check_in_a_forked_child(checker, huge)
    assert answer["problems"] == [
        "the model needs more than 256 MB to build (the limit for checking a config, GYMNOS_CHECK_MEMORY_MB)"
    ]
    assert _server()._forkserver_pid == parents


def test_a_forked_process_whose_inherited_fork_server_is_gone_starts_its_own(checker):
    parents = _server()._forkserver_pid
    os.kill(parents, signal.SIGKILL)
    # Dead, and left for multiprocessing to reap (it starts this process's next server when it sees that).
    wait_for(lambda: "State:\tZ" in open(f"/proc/{parents}/status").read(), timeout=10, message="the server dead")
    answer = check_in_a_forked_child(checker, tiny())
    assert answer.get("problems") == [], answer
    assert answer["server"] not in (None, parents)
