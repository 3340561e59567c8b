"""A run's log lines as live events, batched: the work horse adds a :class:`LogBatcher` to the ``gymnosd`` logger.

Each event carries the lines exactly as ``execution.log`` holds them and ``end``, the log's size in bytes after
them, so a page that follows the log from an offset appends an event only when it starts where the page's copy
ends (``end - len(text)``), and reads the log again from its offset otherwise: a lost batch is never a gap.
"""

from __future__ import annotations

import logging
import os
import time

from experiments import live

# A batch goes out when a line comes this long after the previous batch, and at every epoch's end.
BATCH_SECONDS = 0.5
# A batch larger than this (a tensor printed whole) is announced by its end alone: the page reads it from the log.
MAX_TEXT = 64 * 1024


class LogBatcher(logging.Handler):
    """Holds the run's log records and publishes them in batches; ``start()`` before the run, ``stop()`` after.

    It is added before the run's own file handler (``ExecutionLog`` adds that one when the run starts), so when a
    record arrives every record it holds has been written to the file: the file's size is where they end.
    """

    def __init__(self, execution_id: int, every: float = BATCH_SECONDS) -> None:
        super().__init__(logging.DEBUG)
        self.execution_id = execution_id
        self.every = every
        self.pending: list[logging.LogRecord] = []
        self.sent_at = time.monotonic()
        self.logger = logging.getLogger("gymnosd")

    def start(self) -> LogBatcher:
        self.logger.addHandler(self)
        return self

    def stop(self) -> None:
        self.flush()
        self.logger.removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:  # under the handler's lock (logging.Handler.handle)
        if self.pending and time.monotonic() - self.sent_at >= self.every:
            self._send()
        self.pending.append(record)

    def flush(self) -> None:
        self.acquire()
        try:
            self._send()
        finally:
            self.release()

    def _log_file(self) -> logging.FileHandler | None:
        found = [handler for handler in self.logger.handlers if isinstance(handler, logging.FileHandler)]
        return found[0] if found else None

    def _send(self) -> None:
        log_file = self._log_file()
        if not self.pending or log_file is None:  # before the folder exists the lines wait (the file gets them too)
            return
        try:
            text = "".join(log_file.format(record) + log_file.terminator for record in self.pending)
            end = os.path.getsize(log_file.baseFilename)
        except (OSError, ValueError, TypeError):
            return  # the file is the truth; the page reads it from its offset
        finally:
            self.pending.clear()
            self.sent_at = time.monotonic()
        if len(text) > MAX_TEXT:
            live.publish(self.execution_id, live.LOG, text=None, end=end)
        else:
            live.publish(self.execution_id, live.LOG, text=text, end=end)
