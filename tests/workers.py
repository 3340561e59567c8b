"""Real RQ workers for tests: ``manage.py rqworker`` processes on a real Redis and the test database."""

import os
import signal
import subprocess
import sys
import time
import uuid

import psutil
import redis
from django.db import connection

from experiments.jobs.queues import QUEUES
from tests.helpers import ROOT

REDIS_URL = os.environ.get("GYMNOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def queues_at(url=REDIS_URL):
    """settings.RQ_QUEUES with both queues on ``url``."""
    return {name: {"URL": url} for name in QUEUES}


def database_url():
    """The URL of the database the tests run on, for processes the tests start."""
    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    user = conf.get("USER") or ""
    auth = f"{user}:{conf['PASSWORD']}@" if conf.get("PASSWORD") else (f"{user}@" if user else "")
    return f"postgres://{auth}{conf.get('HOST') or '127.0.0.1'}:{conf.get('PORT') or 5432}/{conf['NAME']}"


def worker_env(trainings, cache, redis_url=REDIS_URL, **extra):
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "GYMNOS_TRAININGS_ROOT": str(trainings),
        "GYMNOS_CACHE_DIR": str(cache),
        "GYMNOS_CALLBACK_MODULES": "tests.hooks",
        "PYTHONUNBUFFERED": "1",
        # The tests that kill a worker or its horse see the run fail; tests/test_resume.py asks for resumes.
        "GYMNOS_RESUME_ATTEMPTS": "0",
        **extra,
    }


class WorkerProcess:
    """One ``manage.py rqworker default gpu`` process; ``stop()`` is RQ's cold shutdown."""

    def __init__(self, env, log_path, name=None):
        self.name = name or f"test-{uuid.uuid4().hex[:8]}"
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "rqworker", *QUEUES, "--name", self.name],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.redis = redis.Redis.from_url(env["REDIS_URL"])

    def wait_ready(self, timeout=90):
        from rq import Worker

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {open(self.log.name).read()[-2000:]}")
            if any(worker.name == self.name for worker in Worker.all(connection=self.redis)):
                return self
            time.sleep(0.2)
        raise TimeoutError(f"worker {self.name} did not register within {timeout}s")

    def horse(self):
        """Its work horse: the child forked from it (it may also have started the build checker's fork server)."""
        worker = psutil.Process(self.process.pid)
        (horse,) = [child for child in worker.children() if child.cmdline() == worker.cmdline()]
        return horse

    def stop(self):
        if self.process.poll() is None:
            for _ in range(2):
                try:
                    self.process.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    break
                time.sleep(0.3)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def wait_for(predicate, timeout=60, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{message} not met within {timeout}s")


def flush(redis_url=REDIS_URL):
    redis.Redis.from_url(redis_url).flushdb()
