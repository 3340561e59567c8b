"""Epochs streamed to a Gymnos server as they are logged, from a thread of their own: asked for, never in the way.

    run = start(experiment="mnist", live="http://gymnos:8000/publish/epoch/end/<token>/")

Or, given a server and an API token (a push-only one will do), through the API, batched::

    run = start(experiment="mnist", server="http://gymnos:8000", token="...")

Each wake-up posts every pending epoch (up to 1,000) in one request to ``/api/push/live``, under the run's
experiment and folder name: the server's row for the run is the one its folder is synced into when it is pushed,
so the push completes that run and makes no second one (``ApiStream``).

The URL is a run's RemoteMonitor URL (the dashboard's **New run -> Follow a run that trains somewhere
else**, or a run page's). ``run.log`` hands its values to this stream (a dict update under a lock) and
returns; the thread posts each pending epoch as Keras' RemoteMonitor does (a JSON body
``{"epoch": 0, "loss": ...}``), every epoch pending at a wake-up over one keep-alive connection. A
server that is down or slow only delays the stream: the epochs wait (the newest ``max_pending``; the
folder keeps them all) and are posted once it answers, with a back-off between tries. The folder
stays the record: push it when the run ends.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import urllib.parse
from typing import Any

from .push import PushError

MAX_PENDING = 10_000
RETRY = (0.5, 30.0)  # seconds between tries while the server is away: the first, doubling to the last


class LiveStream:
    """The background poster of one run's epochs; ``put`` never blocks on the network."""

    def __init__(
        self,
        url: str,
        max_pending: int = MAX_PENDING,
        timeout: float = 5.0,
        retry: tuple[float, float] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PushError(f"live={url!r}: expected the run's RemoteMonitor URL, http(s)://host/publish/epoch/end/...")
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.parts, self.timeout, self.retry, self.max_pending = parts, timeout, retry or RETRY, max_pending
        self.pending: dict[int, dict[str, float | None]] = {}  # guarded by lock: the training thread adds
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.sent = self.dropped = 0
        self.requests = 0  # posts the server answered
        self.error = ""  # the last try's failure, while it lasts
        self.refused = ""  # the last epoch the server refused for good
        self.connection: http.client.HTTPConnection | None = None
        self.thread = threading.Thread(target=self._loop, name="gymnos-track-live", daemon=True)
        self.thread.start()

    def put(self, epoch: int, values: list[tuple[str, float]]) -> None:
        """Queue ``values`` for ``epoch`` (merged with what it waits with); past ``max_pending``, the oldest go."""
        clean = {name: (value if math.isfinite(value) else None) for name, value in values}
        with self.lock:
            self.pending.setdefault(epoch, {}).update(clean)
            while len(self.pending) > self.max_pending:
                del self.pending[next(iter(self.pending))]
                self.dropped += 1
        self.wake.set()

    def close(self, wait: float = 2.0) -> int:
        """Post what is pending for up to ``wait`` seconds, then stop; returns the epochs left unsent."""
        self.stopping.set()
        self.wake.set()
        self.thread.join(wait)
        with self.lock:
            return len(self.pending)

    def _loop(self) -> None:
        delay = self.retry[0]
        while True:
            self.wake.wait()
            self.wake.clear()
            if self._drain():
                delay = self.retry[0]
                if self.stopping.is_set():
                    return
            else:
                if self.stopping.is_set():  # the run ended and the server is still away: the folder has it all
                    return
                self.stopping.wait(delay)
                delay = min(delay * 2, self.retry[1])
                self.wake.set()

    def _drain(self) -> bool:
        """Post every pending epoch in order; False at the first failure (it stays pending)."""
        while True:
            with self.lock:
                if not self.pending:
                    return True
                epoch = next(iter(self.pending))
                values = self.pending[epoch]
            if not self._post({"epoch": epoch, **values}):
                return False
            with self.lock:
                if self.pending.get(epoch) is values:  # not logged again meanwhile
                    del self.pending[epoch]
            self.sent += 1

    def _post(self, payload: dict[str, Any]) -> bool:
        try:
            if self.connection is None:
                kind = http.client.HTTPSConnection if self.parts.scheme == "https" else http.client.HTTPConnection
                self.connection = kind(self.parts.hostname or "", self.parts.port, timeout=self.timeout)
            path = self.parts.path + (f"?{self.parts.query}" if self.parts.query else "")
            body = json.dumps(payload).encode()
            self.connection.request("POST", path, body=body, headers=self.headers)
            response = self.connection.getresponse()
            answer = response.read(4096)
        except (OSError, http.client.HTTPException) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            if self.connection is not None:
                self.connection.close()
            self.connection = None
            return False
        self.requests += 1
        if response.status >= 500:
            self.error = f"the server answered {response.status}"
            return False
        if response.status >= 400:  # refused for good (a revoked URL, a bad value): dropped, and said at the end
            self.refused = f"the server refused epoch {payload.get('epoch')} ({response.status}): {answer[:200]!r}"
        self.error = ""  # the server answers again
        return True


BATCH = 1_000  # epochs a request (the server's bound)


class ApiStream(LiveStream):
    """The epochs of run ``experiment/folder`` to ``server``'s ``/api/push/live`` with an API token, batched: each
    wake-up sends what is pending (up to ``BATCH`` epochs a request) in one request."""

    def __init__(
        self, server: str, token: str, experiment: str, folder: str, project: str | None = None, **kwargs: Any
    ) -> None:
        # ``project``: the server's project the run goes to (None: the token's when it is limited to one, else default)
        query = "?" + urllib.parse.urlencode({"project": project}) if project else ""
        url = server.rstrip("/") + "/api/push/live" + query
        super().__init__(url, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        self.run = {"experiment": experiment, "folder": folder}

    def _drain(self) -> bool:
        while True:
            with self.lock:
                if not self.pending:
                    return True
                batch = list(self.pending.items())[:BATCH]
            epochs = [{"epoch": epoch, "metrics": values} for epoch, values in batch]
            if not self._post({**self.run, "epochs": epochs}):
                return False
            with self.lock:
                for epoch, values in batch:
                    if self.pending.get(epoch) is values:  # not logged again meanwhile
                        del self.pending[epoch]
            self.sent += len(batch)
