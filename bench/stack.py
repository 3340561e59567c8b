"""What the benchmarks that start Gymnos' own stack share: a fresh folder for its state, a free port, and a
``manage.py up`` of their own (``start_up``)."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def fresh(name: str, keep: tuple[str, ...] = ()) -> tuple[Path, dict[str, str]]:
    """A new folder, and this process's environment pointed at it: the embedded Redis, SQLite, trainings and
    cache under it. ``REDIS_URL`` and ``DATABASE_URL`` from outside are dropped unless named in ``keep``."""
    folder = Path(tempfile.mkdtemp(prefix=f"gymnos-bench-{name}-"))
    env = {key: value for key, value in os.environ.items() if key in keep or key not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        GYMNOS_VAR_DIR=str(folder / "var"),
        GYMNOS_TRAININGS_ROOT=str(folder / "trainings"),
        GYMNOS_CACHE_DIR=str(folder / "cache"),
    )
    return folder, env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], object], what: str, seconds: float = 300) -> None:
    """Until ``condition()`` is true; ``SystemExit`` naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.1)


@dataclass
class Up:
    """A ``manage.py up`` of a benchmark's own, on a fresh folder (``start_up``); ``stop()`` ends it."""

    process: subprocess.Popen[bytes]
    server: str  # its URL
    env: dict[str, str]
    work: Path  # its folder (var/, trainings, cache; the benchmark's own files beside)
    log: IO[bytes]

    def token(self) -> str:
        """A new API token of the admin ``up`` made."""
        command = [sys.executable, str(ROOT / "manage.py"), "api_token", "admin", "--rotate"]
        answer = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, check=True)
        return answer.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(60)
        self.log.close()


def start_up(name: str, workers: int, pause: float) -> Up:
    """``manage.py up --workers N`` on a fresh folder, its runs' epochs held ``pause`` seconds each at their start
    (``tests.hooks.pause``, allowed here), once it says it is up."""
    work, env = fresh(name)
    env.update(
        PYTHONUNBUFFERED="1",
        GYMNOS_CALLBACK_MODULES="experiments.pipeline.hooks,tests.hooks",
        GYMNOS_TEST_EPOCH_PAUSE=str(pause),
    )
    port = free_port()
    log = open(work / "up.log", "wb")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "up", "--workers", str(workers), "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    up = Up(process, f"http://127.0.0.1:{port}", env, work, log)
    try:
        wait_for(lambda: b"Log in as:" in (work / "up.log").read_bytes() or process.poll() is not None, "up")
        if process.poll() is not None:
            raise SystemExit("up did not start:\n" + (work / "up.log").read_text()[-3000:])
    except BaseException:
        up.stop()
        raise
    return up
