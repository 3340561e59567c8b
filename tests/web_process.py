"""A real web server for tests: gunicorn serving Gymnos on the test database, in a session of its own, so that a
test can kill it as a crash would (SIGKILL to the master and its workers at once) and start it again."""

import os
import signal
import socket
import subprocess
import sys
import time

from tests.helpers import ROOT
from tests.workers import worker_env


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebProcess:
    """``python -m gunicorn gymnos_web.wsgi`` on 127.0.0.1:``port``, as ``manage.py up`` runs it."""

    def __init__(self, trainings, cache, log_path, port=None):
        self.env = worker_env(trainings, cache)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process = None

    def start(self, timeout=120.0):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "gunicorn", "gymnos_web.wsgi:application",
                    "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--worker-class", "gthread",
                    "--threads", "4", "--timeout", "120", "--no-control-socket",
                ],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gunicorn did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        return self

    def _answers(self):
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def kill(self):
        """SIGKILL to gunicorn's master and workers together (its session), as a crash of the machine's server."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(30)
        while self._answers():  # a worker the kill reached a moment later
            time.sleep(0.05)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
