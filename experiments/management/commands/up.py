"""``python manage.py up``: the whole stack on one machine, in the foreground, until Ctrl-C.

Applies migrations, starts the embedded Redis (when REDIS_URL is unset), N RQ workers and the web
server (gunicorn with uvicorn workers serving the ASGI application, so that the pages' live event streams hold no
thread each; static files by WhiteNoise, collected first when they changed), then prints the URL
and how to log in, last. The workers' and the web server's own output goes to ``var/log/``
(TensorFlow's start-up lines included); the console shows errors, the requests only with
``--access-log`` (or ``-v 2``), and the way back in once someone has logged in
(``experiments.management.console``). A worker that dies is started again under a new
name. Ctrl-C (or SIGTERM) stops everything within seconds: a run that finished stays as it ended,
a run still training is cancelled with the reason (its partial folder kept and indexed), and no
child process is left behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

import django_rq
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rq import Worker

from audit.models import Entry
from audit.recording import record
from experiments import staticfiles
from experiments.display import counted
from experiments.index.sync import index_execution
from experiments.jobs import database, reaper
from experiments.jobs.launching import launch, requeue_orphans
from experiments.jobs.queues import QUEUES, EmbeddedRedis
from experiments.management.console import ErrorEcho, FirstLogin
from experiments.models import Execution
from experiments.pipeline import ConfigError

log = logging.getLogger("experiments.up")

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")
SHUTDOWN_REASON = "cancelled: `manage.py up` was stopped while this ran; its partial folder is kept"
# On Ctrl-C, how long a work horse may take to end a run that has trained its last epoch (saving,
# evaluating, indexing) before it is stopped, and how long everything may then take to exit before it
# is killed: within the 10 s a person waits for their prompt.
FINISHING_GRACE = 6.0
EXIT_DEADLINE = 2.5
# How long a worker with nothing to finish has to exit on its own (an idle one exits at once).
SETTLE = 0.5
# The web server: gunicorn's processes (GYMNOS_WEB_WORKERS, 2 by default, so that a request holding one process's
# GIL leaves the others serving), each a uvicorn worker running the ASGI application: an open event stream is a
# coroutine waiting on Redis, not a thread; each ordinary (sync) view runs in a thread of its own, as under
# gthread. Each process keeps a build checker with TensorFlow loaded (hundreds of MB, seconds to start).
# uvicorn.workers is deprecated for the uvicorn-worker package, which is not packaged where we install from; it
# is still in uvicorn (pinned below 1 in pyproject.toml).
WEB_WORKER_CLASS = "uvicorn.workers.UvicornWorker"
# Seconds an idle keep-alive connection stays open. Pages poll every 2-3 s: with gunicorn's default of 2 s a
# poll could be sent on a connection the server was closing (a reset, in bench/load.py).
KEEP_ALIVE = 10
# TensorFlow's C++ start-up lines (CUDA probing, oneDNN) in the workers' logs: errors only.
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR", "PYTHONUNBUFFERED": "1"}


class Stack:
    """The child processes of one ``up``; ``start()``, ``supervise()`` until a signal, ``stop()``."""

    def __init__(
        self, workers: int, bind: str, web_workers: int, out: Callable[[str], None], access_log: bool = False
    ) -> None:
        self.worker_count = workers
        self.access_log = access_log
        self.pollers: list[ErrorEcho | FirstLogin] = []  # what the console shows while it runs
        self.bind = bind
        self.web_workers = web_workers
        self.out = out
        self.prefix = f"up-{socket.gethostname()}-{os.getpid()}"
        self.redis: EmbeddedRedis | None = None
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self.names: dict[int, str] = {}
        self.generation = 0
        self.stopping = False
        self.env = {**os.environ, **QUIET}
        self.logs = Path(settings.LOG_DIR)
        self.logs.mkdir(parents=True, exist_ok=True)

    def start(self) -> Stack:
        call_command("migrate", interactive=False, verbosity=0)
        staticfiles.collect()  # hashed, gzipped copies for whitenoise; at once when nothing changed
        if not settings.REDIS_URL:
            self.redis = EmbeddedRedis().start()
            self.out(f"Redis (embedded): {self.redis.url}")
        else:
            self.out(f"Redis: {settings.REDIS_URL}")
        for index in range(self.worker_count):
            self._start_worker(index)
        if self.worker_count:
            self.out(f"Workers: {self.worker_count}, loading TensorFlow (their output: {self.logs}/worker-*.log)")
        # The access log on the console when asked for; gunicorn's own lines (and TensorFlow's, from the build
        # checker's fork server each web process starts) in var/log/web.log, its errors echoed to the console.
        access = ["--access-logfile", "-"] if self.access_log else []
        with open(self.logs / "web.log", "ab") as web_log:
            self.web_log_start = web_log.tell()
            self.web = subprocess.Popen(
                [
                    sys.executable, "-m", "gunicorn", "gymnos_web.asgi:application", "--bind", self.bind,
                    "--workers", str(self.web_workers), "--worker-class", WEB_WORKER_CLASS,
                    "--timeout", "120", "--graceful-timeout", "3", "--keep-alive", str(KEEP_ALIVE),
                    *access, "--error-logfile", "-", "--no-control-socket",
                ],
                env=self.env, stdin=subprocess.DEVNULL, stdout=None, stderr=web_log, start_new_session=True,
            )  # fmt: skip
        self._wait_for_web()
        self.pollers.append(ErrorEcho(self.logs / "web.log", self.web_log_start, self.out))
        self._wait_for_workers()
        requeued = requeue_orphans()
        if requeued:
            self.out(f"Queued again {counted(requeued, 'run')} whose job the queue had lost.")
        return self

    def _spawn(self, command: list[str], log: IO[bytes] | None) -> subprocess.Popen[bytes]:
        # A session of their own: Ctrl-C reaches `up` alone, which stops them in order. Niced: see _lower_priority.
        return subprocess.Popen(
            command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=_lower_priority,  # safe: runs before exec, in the child; up starts no threads first
        )

    def _start_worker(self, index: int) -> None:
        """Start worker ``index`` under a name no other worker had: a killed worker's name stays taken in Redis."""
        self.generation += 1
        name = f"{self.prefix}-{index}.{self.generation}"
        self.names[index] = name
        log_file = open(self.logs / f"worker-{index}.log", "ab")  # the child keeps it open: not a with block
        self.workers[index] = self._spawn([sys.executable, MANAGE, "rqworker", *QUEUES, "--name", name], log_file)
        log_file.close()

    def _forget_worker(self, name: str) -> None:
        """A worker killed without a goodbye stays listed in Redis until its key expires: end it now."""
        try:
            connection = django_rq.get_connection(QUEUES[0])
            dead = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=connection)
            if dead is not None:
                dead.register_death()
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("Could not remove the dead worker %s from Redis: %s", name, exc)

    def _wait_for_web(self, timeout: float = 300) -> None:
        """Until every web process has booted, its build checker warm (each says so in web.log)."""
        assert self.web is not None  # start() spawned it
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise CommandError(f"the web server exited at start (is {self.bind} in use? see {self.logs}/web.log)")
            with open(self.logs / "web.log", "rb") as log_file:
                log_file.seek(self.web_log_start)
                ready = log_file.read().count(b"Gymnos web process ")
            if ready >= self.web_workers:
                return
            time.sleep(0.2)
        raise CommandError(f"the web server was not ready within {timeout:.0f}s (see {self.logs}/web.log)")

    def _wait_for_workers(self, timeout: float = 90) -> None:
        """Until every worker has registered (imported TensorFlow), so "up" means ready to train."""
        deadline = time.monotonic() + timeout
        connection = django_rq.get_connection(QUEUES[0])
        while time.monotonic() < deadline and not self.stopping:
            registered = {worker.name for worker in Worker.all(connection=connection)}
            if set(self.names.values()) <= registered:
                return
            time.sleep(0.3)

    def supervise(self) -> int:
        """Restart a worker that dies, run the reaper every ``REAP_SECONDS``; return when the web server exits or a
        signal arrives.

        Nothing here may end ``up`` but a signal or the web server: a database error (a lock held too long, a
        restarting server, a connection it killed) is logged and the loop goes on, on a new connection once the
        old one broke (``experiments.jobs.database``).
        """
        assert self.web is not None  # start() spawned it
        reap_due = reaper.Every(reaper.REAP_SECONDS)
        while not self.stopping:
            if self.web.poll() is not None:
                self.out(f"The web server exited ({self.web.returncode}); stopping. See {self.logs}/web.log")
                return 1
            for index, process in list(self.workers.items()):
                if process.poll() is not None and not self.stopping:
                    self.out(f"Worker {self.names[index]} exited ({process.returncode}); starting a new one.")
                    self._forget_worker(self.names[index])
                    self._start_worker(index)
            if reap_due():
                reaper.reap()
            for poller in self.pollers:
                poller.poll()
            time.sleep(0.5)
        return 0

    def _finishing(self) -> bool:
        return bool(database.step("check for runs finishing", lambda: Execution.objects.finishing(self.prefix)))

    def _cancel_running(self) -> None:
        """The runs this stack's workers left running end ``cancelled`` (their partial folders indexed)."""
        for pk in Execution.objects.cancel_running(SHUTDOWN_REASON, self.prefix):
            index_execution(pk)

    def stop(self) -> None:
        """Stop the workers (their horses with them), the web server and Redis; end what is left running.

        Workers get a warm shutdown first. A horse whose run has trained its last epoch (it is saving,
        evaluating, indexing) may end it, for up to ``FINISHING_GRACE`` seconds; one still training is
        stopped at once. A run they leave running is cancelled with the reason and its partial folder
        indexed. Everything is killed past ``EXIT_DEADLINE``.
        """
        self.stopping = True
        workers: list[subprocess.Popen[bytes] | None] = list(self.workers.values())
        for process in workers:
            _signal(process, signal.SIGINT)  # RQ: a warm shutdown, the horse may finish its job
        _signal(self.web, signal.SIGTERM)
        started = time.monotonic()
        while time.monotonic() - started < FINISHING_GRACE and any(_alive(process) for process in workers):
            if time.monotonic() - started > SETTLE and not self._finishing():
                break
            time.sleep(0.1)
        for process in workers:
            _signal(process, signal.SIGINT)  # RQ: the second one kills the running work horse
        _wait_all([*workers, self.web], EXIT_DEADLINE)
        for process in [*workers, self.web]:
            _kill_group(process)
        # On a healthy connection: the supervisor's may have been killed since its last step.
        database.step("record the runs this shutdown stopped", self._cancel_running)
        if self.redis is not None:
            self.redis.stop()


def _lower_priority() -> None:
    """In a worker's child, after its ``setsid``: GYMNOS_WORKER_NICE for the process and for its session. On one
    machine training yields the CPU to the web server, so pages answer while runs train; an idle web server leaves
    the workers every cycle. Where Linux groups each session's processes for scheduling (autogroup, on by default
    in many kernels), a nice value ranks processes only inside their group: a worker, a session of its own, would
    take as much CPU as the whole web server whatever its nice. A kernel without autogroups has no such file."""
    nice = settings.GYMNOS_WORKER_NICE
    if nice:
        os.nice(nice)
        with contextlib.suppress(OSError):
            Path("/proc/self/autogroup").write_text(str(nice))


def _alive(process: subprocess.Popen[bytes] | None) -> bool:
    return process is not None and process.poll() is None


def _signal(process: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    if process is not None and process.poll() is None:
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass


def _wait_all(processes: Sequence[subprocess.Popen[bytes] | None], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for process in processes:
        if process is None:
            continue
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass


def _kill_group(process: subprocess.Popen[bytes] | None) -> None:
    """Kill whatever is left of a child's session (a work horse, gunicorn's workers), and reap the child."""
    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


class Command(BaseCommand):
    help = "Run Gymnos on this machine: migrations, embedded Redis, workers and the web server, until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workers", type=int, default=1, help="how many RQ workers (trainings at once; default 1)")
        parser.add_argument(
            "--web-workers",
            type=int,
            default=settings.GYMNOS_WEB_WORKERS,
            help="web server processes (ASGI, uvicorn workers), each with its own build checker "
            f"(default GYMNOS_WEB_WORKERS: {settings.GYMNOS_WEB_WORKERS})",
        )
        parser.add_argument(
            "--bind", default="127.0.0.1:8000", help="address of the web server (default 127.0.0.1:8000)"
        )
        parser.add_argument(
            "--access-log",
            action="store_true",
            help="show every request on the console (so does -v 2); errors are always shown",
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
        if options["web_workers"] < 1:
            raise CommandError("--web-workers must be 1 or more")
        out = self.stdout.write
        access_log = options["access_log"] or options["verbosity"] >= 2
        stack = Stack(options["workers"], options["bind"], options["web_workers"], out, access_log)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stack.stopping = True

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        code = 1
        try:
            stack.start()
            for config_file in options["enqueue"]:
                self._enqueue(config_file)
            self._say_up(options["bind"], options["workers"], options["web_workers"])
            stack.pollers.append(FirstLogin(f"http://{options['bind']}/", out))
            code = stack.supervise()
        finally:
            out("Stopping workers, web server and Redis ...")
            stack.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        out("Stopped.")
        # Everything this process started is gone and its records are written: end now. Tearing down the
        # interpreter (every module of Django, pydantic, Redis' client) took seconds on a busy machine,
        # and Ctrl-C should return the prompt at once.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def _say_up(self, bind: str, workers: int, web_workers: int) -> None:
        """The last lines before the requests: where to go, what serves it, and how to log in."""
        url = f"http://{bind}/"
        self.stdout.write(
            f"Gymnos is up: {url}  ({counted(web_workers, 'web process', 'web processes')} (ASGI), "
            f"{counted(workers, 'worker')}; Ctrl-C stops everything)"
        )
        User = get_user_model()
        if User.objects.exists():
            self.stdout.write(f"Log in at {url} with your Gymnos user (an admin adds teammates at {url}admin/).")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", password=password)
        self.stdout.write(f"Log in as: admin / {password}  (the first user; change it in the admin; shown only now)")

    def _enqueue(self, config_file: str) -> None:
        try:
            # The operator's own config: checked against the schema here, built by the worker (which says so
            # in the run if it cannot be), so `up` does not load TensorFlow for a build check.
            execution = launch(json.loads(Path(config_file).read_text()), trusted=True, check=lambda config: [])
        except (OSError, ValueError, ConfigError) as exc:
            self.stderr.write(f"Not queued: {config_file}: {exc}")
            return
        record(None, Entry.Action.LAUNCH, execution=execution, via="manage.py up --enqueue")
        self.stdout.write(f"Queued {config_file} as execution {execution.pk}")
