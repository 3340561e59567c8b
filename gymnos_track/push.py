"""Push run folders to a Gymnos server: in pieces, resumable, idempotent, several folders at once.

    report = push("trainings", server="https://gymnos.example", token="...")   # a root, or one run folder
    print(report.line())   # "pushed 12, already there 3, still running 1, refused 0"

Each folder is listed (path, size, SHA-256 of each file) and the server answers what it already
holds of each file; only the rest is sent, ``chunk_bytes`` at a time at the offset the server holds.
So a push cut off half-way (the network, the server, Ctrl-C) and run again sends only what is
missing, and a folder the server already has is not sent at all. Folders go in parallel
(``workers`` threads, each with its own connection). A folder holding a symbolic link is refused
here, naming it; names and sizes are checked again by the server. A run still being written
(metrics.json says ``running``) is left for a later push.

Plain Python (``http.client``): a cluster node needs nothing but this package.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import stat
import sys
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

CHUNK_BYTES = 1 << 20  # the server takes at most this much at a time
INLINE_FILE = 64 << 10  # a file this small goes with the folder's list of files...
INLINE_BYTES = 512 << 10  # ...up to this much in all (the server's bound)
WORKERS = 4
TIMEOUT = 60.0


class Stream(Protocol):
    def write(self, text: str, /) -> Any: ...
    def flush(self) -> Any: ...


class PushError(Exception):
    """A folder the server (or this client) would not take; the message names the file and says why."""


@dataclass
class PushReport:
    pushed: list[str] = field(default_factory=list)
    existed: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)  # cut off by stop_after_chunks
    sent_bytes: int = 0
    indexed: int = 0  # folders the server indexed (new or changed) at the end
    index_error: str = ""  # why the server did not index them (they are indexed by its next sync)

    def line(self) -> str:
        line = (
            f"pushed {len(self.pushed)}, already there {len(self.existed)}, "
            f"still running {len(self.running)}, refused {len(self.refused)}"
        )
        return line + (f"; not indexed yet: {self.index_error}" if self.index_error else "")


def find_runs(path: str | os.PathLike[str]) -> list[Path]:
    """``path`` itself when it is a run folder (``.../<experiment>/executions/<run>``), else every
    ``<experiment>/executions/<run>`` under it (names starting with '.' skipped, as sync skips them)."""
    path = Path(path)
    if path.parent.name == "executions" and ((path / "execution.log").exists() or (path / "metrics.json").exists()):
        return [path]
    if not path.is_dir():
        raise PushError(f"{path}: not a folder; give a trainings root or one run folder")
    runs = []
    for experiment in sorted(path.iterdir()):
        executions = experiment / "executions"
        if experiment.name.startswith(".") or not executions.is_dir() or executions.is_symlink():
            continue
        runs += [run for run in sorted(executions.iterdir()) if not run.name.startswith(".") and run.is_dir()]
    return runs


def manifest(folder: Path) -> list[dict[str, Any]]:
    """Every file in ``folder``: ``{"path", "size", "sha256"}``; ``PushError`` naming a link or an odd file.

    Hidden names (a temporary file a killed script left, ``.metrics.json.123.tmp``) are not part of the run,
    as sync does not read them: they are left out.
    """
    items = []
    for directory, dirnames, filenames in os.walk(folder):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for name in sorted(name for name in dirnames + filenames if not name.startswith(".")):
            full = os.path.join(directory, name)
            relative = os.path.relpath(full, folder).replace(os.sep, "/")
            status = os.lstat(full)
            if stat.S_ISLNK(status.st_mode):
                raise PushError(f"{folder.name}/{relative}: is a symbolic link; a pushed run holds only its own files")
            if stat.S_ISDIR(status.st_mode):
                continue
            if not stat.S_ISREG(status.st_mode):
                raise PushError(f"{folder.name}/{relative}: is not a regular file")
            items.append({"path": relative, "size": status.st_size, "sha256": _sha256(full)})
    return items


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _still_running(folder: Path) -> bool:
    try:
        with open(folder / "metrics.json", "rb") as file:
            document = json.loads(file.read(64 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("running") is True


class _Server:
    """One keep-alive connection per thread to ``server``'s ``/api/push``."""

    def __init__(self, server: str, token: str, timeout: float, project: str | None = None) -> None:
        url = urllib.parse.urlsplit(server.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise PushError(f"--server {server!r}: expected http(s)://host[:port]")
        self.url, self.token, self.timeout = url, token, timeout
        self.project = project  # ?project= on every request (None: the server's choice, see push())
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self.url.scheme == "https" else http.client.HTTPConnection
            connection = self.local.connection = kind(self.url.hostname or "", self.url.port, timeout=self.timeout)
        return connection

    def call(self, method: str, path: str, body: bytes, query: dict[str, Any] | None = None) -> tuple[int, Any]:
        query = {**(query or {}), **({"project": self.project} if self.project else {})}
        target = f"{self.url.path}/api/push/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        for attempt in (1, 2):  # a keep-alive connection the server closed meanwhile: once more on a new one
            connection = self._connection()
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                self.local.connection = None
                if attempt == 2:
                    raise
        try:
            answer = json.loads(data) if data else None
        except ValueError:
            answer = {"detail": data[:200].decode("utf-8", "replace")}
        if response.status == 401:
            detail = answer.get("detail") if isinstance(answer, dict) else answer
            raise PermissionError(f"the server refused the token ({response.status}): {detail}")
        return response.status, answer


def push(
    path: str | os.PathLike[str],
    server: str,
    token: str,
    workers: int = WORKERS,
    chunk_bytes: int = CHUNK_BYTES,
    progress: Stream | None = sys.stderr,
    timeout: float = TIMEOUT,
    stop_after_chunks: int | None = None,
    project: str | None = None,
) -> PushReport:
    """Push every run folder at ``path`` (a trainings root or one run folder) to ``server``; see the module.

    The folders go into ``project`` on the server (the token's user needs the editor role there); None: the
    token's project when it is limited to one, else ``default``.

    ``stop_after_chunks`` stops each folder after sending that many pieces, as a cut-off push would
    (for tests of resuming). A wrong token stops everything (``PermissionError``); a folder the server
    refuses is in ``report.refused`` with the server's reason, and the others go on.
    """
    if not 0 < chunk_bytes <= CHUNK_BYTES:
        raise PushError(f"chunk_bytes={chunk_bytes}: expected 1 to {CHUNK_BYTES:,}")
    connection = _Server(server, token, timeout, project)
    runs = find_runs(path)
    report = PushReport()
    lock = threading.Lock()
    done = [0]

    def said(run: Path, outcome: str) -> None:
        with lock:
            done[0] += 1
            if progress is not None:
                progress.write(f"[{done[0]}/{len(runs)}] {run.parent.parent.name}/{run.name}: {outcome}\n")
                progress.flush()

    def one(run: Path) -> None:
        name = f"{run.parent.parent.name}/{run.name}"
        if _still_running(run):
            report.running.append(name)
            return said(run, "still running; push it once it has finished")
        try:
            outcome, sent = _push_folder(connection, run, chunk_bytes, stop_after_chunks)
        except PushError as exc:
            report.refused[name] = str(exc)
            return said(run, f"refused: {exc}")
        with lock:
            report.sent_bytes += sent
            {"exists": report.existed, "stopped": report.stopped}.get(outcome, report.pushed).append(name)
        said(run, "already there" if outcome == "exists" else f"{outcome} ({sent:,} bytes sent)")

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, runs))  # list(): an error in one (a refused token) is raised here
    _index(connection, report.pushed + report.existed, report)
    if progress is not None:
        progress.write(report.line() + "\n")
    return report


SYNC_BATCH = 1_000  # the server indexes at most this many folders a request


def _index(server: _Server, names: list[str], report: PushReport) -> None:
    """Have the server index the folders pushed (each was finished without): in batches, together."""
    for start in range(0, len(names), SYNC_BATCH):
        runs = [
            dict(zip(("experiment", "folder"), name.split("/", 1), strict=True))
            for name in names[start : start + SYNC_BATCH]
        ]
        status, answer = server.call("POST", "sync", json.dumps({"runs": runs}).encode())
        if status != 200:
            report.index_error = str(answer.get("detail") if isinstance(answer, dict) else answer)
            return
        report.indexed += int(answer["indexed"])


def _push_folder(server: _Server, run: Path, chunk_bytes: int, stop_after: int | None) -> tuple[str, int]:
    experiment, folder = run.parent.parent.name, run.name
    items = manifest(run)
    # Small files go with the list (a run of small files is one request); none in a push cut off in pieces.
    inline, inline_bytes = _inline_files(run, items) if stop_after is None else ({}, 0)
    body: dict[str, Any] = {"experiment": experiment, "folder": folder, "files": items, "sync": False}
    if inline:
        body["inline"] = {path: base64.b64encode(data).decode() for path, data in inline.items()}
    status, answer = server.call("POST", "begin", json.dumps(body).encode())
    _check(status, answer)
    if answer["state"] == "exists":
        return "exists", 0
    if answer["state"] == "pushed":
        return ("pushed" if answer.get("created") else "exists"), inline_bytes
    stopped, sent = _send_chunks(server, run, (experiment, folder), items, answer["have"], chunk_bytes, stop_after)
    if stopped:
        return "stopped", sent
    status, answer = server.call(
        "POST", "finish", json.dumps({"experiment": experiment, "folder": folder, "sync": False}).encode()
    )
    _check(status, answer)
    return ("pushed" if answer["created"] else "exists"), sent


def _inline_files(run: Path, items: list[dict[str, Any]]) -> tuple[dict[str, bytes], int]:
    """The small files that go with the list, and their bytes in all."""
    inline: dict[str, bytes] = {}
    inline_bytes = 0
    for item in items:
        if item["size"] <= INLINE_FILE and inline_bytes + item["size"] <= INLINE_BYTES:
            inline[item["path"]] = (run / item["path"]).read_bytes()
            inline_bytes += item["size"]
    return inline, inline_bytes


def _send_chunks(
    server: _Server,
    run: Path,
    names: tuple[str, str],
    items: list[dict[str, Any]],
    have: dict[str, Any],
    chunk_bytes: int,
    stop_after: int | None,
) -> tuple[bool, int]:
    """Send each file's pieces from what the server ``have``s of it: (stopped after ``stop_after`` pieces,
    bytes sent)."""
    experiment, folder = names
    sent = chunks = 0
    for item in items:
        offset = int(have.get(item["path"], 0))
        with open(run / item["path"], "rb") as file:
            while offset < item["size"]:
                if stop_after is not None and chunks >= stop_after:
                    return True, sent
                file.seek(offset)
                data = file.read(min(chunk_bytes, item["size"] - offset))
                query = {"experiment": experiment, "folder": folder, "path": item["path"], "offset": offset}
                status, reply = server.call("PUT", "chunk", data, query)
                if status != 409:  # 409: the server holds another size (a piece that got there twice): go on from it
                    _check(status, reply)
                    sent += len(data)
                    chunks += 1
                offset = int(reply["have"])
    return False, sent


def _check(status: int, answer: Any) -> None:
    if status != 200:
        detail = answer.get("detail") if isinstance(answer, dict) else answer
        raise PushError(str(detail) if detail else f"the server answered {status}")


def main(argv: list[str] | None = None) -> int:
    """``python -m gymnos_track.push FOLDER_OR_ROOT --server URL --token TOKEN`` (where Django is not installed)."""
    parser = argparse.ArgumentParser(prog="python -m gymnos_track.push", description=__doc__.split("\n\n")[0])
    parser.add_argument("path")
    parser.add_argument("--server", required=True)
    parser.add_argument("--token", default=os.environ.get("GYMNOS_TOKEN"), help="default: $GYMNOS_TOKEN")
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--project", default=None, help="the server's project to push into")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token (or GYMNOS_TOKEN) is required")
    try:
        report = push(args.path, args.server, args.token, workers=args.workers, project=args.project)
    except (PushError, PermissionError, OSError) as exc:
        print(f"push failed: {exc}", file=sys.stderr)
        return 1
    return 1 if report.refused else 0


if __name__ == "__main__":
    sys.exit(main())
