"""``python manage.py up``: the whole stack on one machine, in the foreground, until Ctrl-C.

Applies migrations, starts the embedded Redis (when REDIS_URL is unset), N workers and the web
server, and prints the URL. Ctrl-C (or SIGTERM) stops everything: running executions are
marked cancelled (their partial folders kept and indexed), workers stop their work horses,
the web server and Redis stop, and no child process is left behind.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.models import Entry
from audit.recording import record
from experiments.models import Execution
from experiments.pipeline import ConfigError
from experiments.queueing import QUEUES, EmbeddedRedis
from experiments.running import launch
from experiments.sync import index_execution

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")
SHUTDOWN_REASON = "cancelled: `manage.py up` was stopped while this ran; its partial folder is kept"


class Stack:
    """The child processes of one ``up``; ``start()``, ``supervise()`` until a signal, ``stop()``."""

    def __init__(self, workers: int, bind: str, out: Callable[[str], None]) -> None:
        self.worker_count = workers
        self.bind = bind
        self.out = out
        self.prefix = f"up-{socket.gethostname()}-{os.getpid()}"
        self.redis: EmbeddedRedis | None = None
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")

    def start(self) -> Stack:
        call_command("migrate", interactive=False, verbosity=0)
        if not settings.REDIS_URL:
            self.redis = EmbeddedRedis().start()
            self.out(f"Redis (embedded): {self.redis.url}")
        else:
            self.out(f"Redis: {settings.REDIS_URL}")
        for index in range(self.worker_count):
            self._start_worker(index)
        host, _, port = self.bind.rpartition(":")
        self.web = self._spawn([sys.executable, MANAGE, "runserver", "--noreload", self.bind])
        self._wait_for_web(host or "127.0.0.1", int(port))
        return self

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        # A session of their own: Ctrl-C reaches `up` alone, which stops them in order.
        return subprocess.Popen(command, env=self.env, stdin=subprocess.DEVNULL, start_new_session=True)

    def _start_worker(self, index: int) -> None:
        name = f"{self.prefix}-{index}"
        self.workers[index] = self._spawn([sys.executable, MANAGE, "rqworker", *QUEUES, "--name", name])

    def _wait_for_web(self, host: str, port: int, timeout: float = 30) -> None:
        assert self.web is not None  # start() spawned it
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise CommandError(f"the web server exited at start (is {self.bind} already in use?)")
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise CommandError(f"the web server did not listen on {self.bind} within {timeout}s")

    def supervise(self) -> int:
        """Restart a worker that dies; return when the web server exits or a signal arrives."""
        assert self.web is not None  # start() spawned it
        last_reap = 0.0
        while not self.stopping:
            if self.web.poll() is not None:
                self.out(f"The web server exited ({self.web.returncode}); stopping.")
                return 1
            for index, process in list(self.workers.items()):
                if process.poll() is not None and not self.stopping:
                    self.out(f"Worker {self.prefix}-{index} exited ({process.returncode}); starting it again.")
                    self._start_worker(index)
            if time.monotonic() - last_reap > 5:
                Execution.objects.mark_lost()
                last_reap = time.monotonic()
            time.sleep(0.5)
        return 0

    def stop(self) -> None:
        """Stop the workers (their horses with them), the web server and Redis; end what is left running.

        Runs the horses finished before the signal stay as they ended; the ones still training are
        cancelled with the reason once their workers are gone, and their partial folders indexed.
        """
        self.stopping = True
        for process in self.workers.values():
            # RQ: the first SIGINT is a warm shutdown, the second kills the running work horse.
            for _ in range(2):
                _signal(process, signal.SIGINT)
                time.sleep(0.2)
        _signal(self.web, signal.SIGTERM)
        children: list[subprocess.Popen[bytes] | None] = [*self.workers.values(), self.web]
        for child in children:
            _wait_or_kill(child, timeout=15)
        for pk in Execution.objects.cancel_running(SHUTDOWN_REASON, self.prefix):
            index_execution(pk)
        if self.redis is not None:
            self.redis.stop()


def _signal(process: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    if process is not None and process.poll() is None:
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass


def _wait_or_kill(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    if process is None:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Command(BaseCommand):
    help = "Run Gymnos on this machine: migrations, embedded Redis, workers and the web server, until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workers", type=int, default=1, help="how many RQ workers to start (default 1)")
        parser.add_argument(
            "--bind", default="127.0.0.1:8000", help="address of the web server (default 127.0.0.1:8000)"
        )
        parser.add_argument(
            "--enqueue",
            metavar="CONFIG",
            action="append",
            default=[],
            help="queue this config once everything is up (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["workers"] < 0:
            raise CommandError("--workers must be 0 or more")
        stack = Stack(options["workers"], options["bind"], lambda line: self.stdout.write(line))
        received: list[int] = []

        def on_signal(signum: int, frame: FrameType | None) -> None:
            received.append(signum)
            stack.stopping = True

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            stack.start()
            self._first_login()
            self.stdout.write(
                f"Gymnos is up: http://{options['bind']}/  ({options['workers']} worker(s); Ctrl-C stops everything)"
            )
            for config_file in options["enqueue"]:
                self._enqueue(config_file)
            code = stack.supervise()
        finally:
            self.stdout.write("Stopping workers, web server and Redis ...")
            stack.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Stopped.")
        if code:
            sys.exit(code)

    def _first_login(self) -> None:
        """On a fresh install there is nobody to log in as: make an admin and say so, once."""

        User = get_user_model()
        if User.objects.exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", password=password)
        self.stdout.write(
            f"Created the first user. Log in as: admin / {password}  (change it in the admin; shown only now)"
        )

    def _enqueue(self, config_file: str) -> None:
        try:
            execution = launch(json.loads(Path(config_file).read_text()), trusted=True)
        except (OSError, ValueError, ConfigError) as exc:
            self.stderr.write(f"Not queued: {config_file}: {exc}")
            return
        record(None, Entry.Action.LAUNCH, execution=execution, via="manage.py up --enqueue")
        self.stdout.write(f"Queued {config_file} as execution {execution.pk}")
