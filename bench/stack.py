"""What the benchmarks that start Gymnos' own stack share: a fresh folder for its state, and a free port."""

import os
import socket
import tempfile
from pathlib import Path


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
