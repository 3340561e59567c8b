"""The build check, run in a child process that a runaway config cannot take past its caps.

A config chooses what building its model costs (``{"type": "dense", "units": 100000000}``
asks for gigabytes), so a server never builds one in its own process. ``IsolatedChecker`` keeps
a fork server that has imported the frameworks once (``preload``); each check forks a fresh
child from it, which caps its own address space at what it already maps plus ``memory_mb``
(``RLIMIT_AS``), runs ``build_check.build_problems`` and sends back the problems. The parent
waits at most ``seconds`` and kills a child that takes longer. A child that runs out of memory
or dies answers with one problem at ``model.network``; the server's own memory never moves.

    checker = IsolatedChecker()
    problems = checker.problems(config, memory_mb=2048, seconds=30)   # [Problem(path, message), ...]; [] builds
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import threading
import time
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .build_check import build_problems, component_problems
from .config import TrainingConfig, load_config
from .errors import ComponentError, ConfigError, Problem, is_out_of_memory

NETWORK = "model.network"


def mapped_bytes() -> int:
    """What this process maps now (VmSize): the frameworks alone take well over a gigabyte."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(
    source: dict[str, Any], validated: bool, memory_bytes: int, environment: dict[str, str], answer: Connection
) -> None:
    """In the forked child: cap the address space, check, send ``("problems", [...])`` or ``("memory", None)``.

    ``validated``: the asking process's schema accepted ``source`` (the whole build check), or refused it
    (``component_problems``: the parts that validate on their own). ``environment`` is the asking process's
    GYMNOS_* variables now (the fork server started earlier).
    """
    os.environ.update(environment)
    limit = mapped_bytes() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        problems = build_problems(load_config(source)) if validated else component_problems(source)
        answer.send(("problems", [(problem.path, problem.message) for problem in problems]))
    except ConfigError as exc:
        answer.send(("problems", [(problem.path, problem.message) for problem in exc.problems]))
    except ComponentError as exc:
        answer.send(("problems", [(NETWORK, exc.message)]))
    except BaseException as exc:  # noqa: BLE001 - whatever happens here is the config's, told to the parent
        if is_out_of_memory(exc):
            answer.send(("memory", None))
        else:
            answer.send(("problems", [(NETWORK, f"could not be built: {type(exc).__name__}: {exc}")]))
    finally:
        answer.close()


class IsolatedChecker:
    """Runs ``build_problems`` in capped children of one warm fork server; at most ``concurrency`` at once."""

    def __init__(self, concurrency: int = 2, log_path: str | os.PathLike[str] | None = None) -> None:
        self.slots = threading.BoundedSemaphore(concurrency)
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(["experiments.pipeline.check_server"])
        self.log_path = log_path
        self._warm = threading.Event()
        self._started = threading.Lock()

    def start_server(self) -> None:
        """Start the fork server once, its output (TensorFlow's start-up lines) in ``log_path`` if given.

        A process forked from one whose server runs (a work horse, from its worker) uses that one (``_inherit``).
        """
        with self._started:
            if _inherited():
                return
            if self.log_path is None:
                forkserver.ensure_running()
                return
            saved = [os.dup(1), os.dup(2)]
            Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log:
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                try:
                    forkserver.ensure_running()  # the server inherits the two descriptors as they are now
                finally:
                    os.dup2(saved[0], 1)
                    os.dup2(saved[1], 2)
                    for descriptor in saved:
                        os.close(descriptor)

    def warm_up(self, wait: bool = False) -> None:
        """Start the fork server and let it import the frameworks (seconds); in the background unless ``wait``."""

        def start() -> None:
            self.start_server()
            process = self.context.Process(target=time.sleep, args=(0,), daemon=True)
            process.start()  # returns once the server has preloaded and forked
            process.join()
            self._warm.set()

        if wait:
            start()
        else:
            threading.Thread(target=start, name="gymnos-check-warm-up", daemon=True).start()

    def problems(self, config: TrainingConfig | dict[str, Any], memory_mb: int, seconds: float) -> list[Problem]:
        """Every problem the build check finds, or one saying which cap the config went past.

        A ``TrainingConfig`` gets the whole build check; a config the schema refused (its dict) gets the
        check of each component that validates on its own (``build_check.component_problems``).
        """
        started = time.monotonic()
        if not self.slots.acquire(timeout=seconds):
            return [Problem("", f"the server is busy checking other configs (more than {seconds:g} s); try again")]
        try:
            return self._check(config, memory_mb, seconds, seconds - (time.monotonic() - started))
        finally:
            self.slots.release()

    def _check(
        self, config: TrainingConfig | dict[str, Any], memory_mb: int, limit: float, seconds: float
    ) -> list[Problem]:
        self.start_server()
        receiving, sending = self.context.Pipe(duplex=False)
        environment = {key: value for key, value in os.environ.items() if key.startswith("GYMNOS_")}
        validated = isinstance(config, TrainingConfig)
        source = config.source if isinstance(config, TrainingConfig) else config
        arguments = (source, validated, memory_mb * 2**20, environment, sending)
        child = self.context.Process(target=_child, args=arguments, daemon=True)
        try:
            child.start()
        except (OSError, EOFError):  # refused, or the connection closed before the server answered the new pid
            if not _inherited():
                raise
            # The fork server this process inherited is gone (its worker restarted it, or died): start one here.
            _disown()
            self._warm.clear()
            self.start_server()
            child = self.context.Process(target=_child, args=arguments, daemon=True)
            child.start()
        sending.close()
        try:
            # A cold fork server first imports the frameworks; that time is not the config's.
            answered = receiving.poll(max(seconds, 0) + (0 if self._warm.is_set() else 60))
            self._warm.set()
            answer = receiving.recv() if answered else None
        except EOFError:  # the child died without a word: killed for its memory, or crashed
            answer = ("died", None)
        finally:
            receiving.close()
        if answer is None:
            _kill(child)
            return [Problem(NETWORK, f"the model took longer than {limit:g} s to build (the limit for "
                                     "checking a config, GYMNOS_CHECK_SECONDS)")]  # fmt: skip
        child.join(5)
        kind, found = answer
        if kind == "problems":
            return [Problem(path, message) for path, message in found]
        return [Problem(NETWORK, f"the model needs more than {memory_mb} MB to build (the limit for checking "
                                 "a config, GYMNOS_CHECK_MEMORY_MB)")]  # fmt: skip


# A process forked from one that started the fork server (a work horse, forked by its worker) uses that server:
# it answers whoever holds its socket's address and its "alive" descriptor, both inherited. The worker starts it
# before forking any horse (``experiments.jobs.worker``), so a sweep's samples, checked in the horse that queues
# them, pay no second import of the frameworks. Only ``multiprocessing``'s check that its server is alive needs
# help: it calls ``waitpid``, which only the server's parent may; here the server is alive while it answers.
# ``multiprocessing`` has no public way to hand its server to a forked child, hence its private names (the same
# in Python 3.11 to 3.13); a server that stopped answering is replaced by one of the child's own (``_disown``).


def _server() -> Any:
    return forkserver._forkserver


def _inherited() -> bool:
    """Whether this process uses a fork server one of its parents started (``_inherit``)."""
    return "ensure_running" in vars(_server())


def _inherit() -> None:
    server = _server()
    if server._forkserver_pid is None or _inherited():
        return
    parents = server.ensure_running

    def ensure_running() -> None:
        try:
            parents()
        except ChildProcessError:  # not this process's child: a parent's server, alive while it answers
            pass

    server.ensure_running = ensure_running


def _disown() -> None:
    """Forget the inherited fork server (it no longer answers): the next check starts one of this process's own."""
    server = _server()
    del server.ensure_running
    server._forkserver_pid = server._forkserver_address = server._forkserver_alive_fd = None


os.register_at_fork(after_in_child=_inherit)


def _kill(child: multiprocessing.process.BaseProcess) -> None:
    if child.pid is not None and child.is_alive():
        os.kill(child.pid, signal.SIGKILL)
    child.join(5)
