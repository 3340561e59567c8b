"""Reading an execution's log for the dashboard and the API: its last lines, then whatever was appended.

The page asks once without an offset (the last ``TAIL_LINES`` lines and the offset they end
at), then polls with that offset and appends what comes back, like ``tail -f``.

Every answer holds at most ``CHUNK`` bytes of the log, whatever the file holds: the log is read
through ``files.open_for`` with that bound. A log whose last line alone is longer (a progress bar
without line ends, a tensor printed whole) is cut to the bound's last bytes, and the answer says
``"cut": true``. Share-link visitors reach this, so its cost is fixed: one read of ``CHUNK`` bytes.
"""

from __future__ import annotations

from typing import Any

from experiments import files
from experiments.models import Execution

FILE_NAME = "execution.log"
TAIL_LINES = 200
CHUNK = 256 * 1024  # the most one answer holds; a poll continues from the offset it was given


def whole_characters(chunk: bytes) -> int:
    """Where ``chunk`` ends without cutting a UTF-8 character in two (the rest comes next call)."""
    for back in range(1, min(4, len(chunk)) + 1):
        byte = chunk[-back]
        if byte & 0b1100_0000 != 0b1000_0000:  # a lead byte (or ASCII): does its character fit?
            needed = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4 if byte >> 3 == 0b11110 else 1
            return len(chunk) - back if needed > back else len(chunk)
    return len(chunk)


def _first_character(chunk: bytes) -> int:
    """Where the first whole UTF-8 character of ``chunk`` starts (a cut may have left a character's tail)."""
    for index, byte in enumerate(chunk[:4]):
        if byte & 0b1100_0000 != 0b1000_0000:
            return index
    return 0


def read_from(execution: Execution, offset: int) -> dict[str, Any]:
    """``{"offset": next offset, "size": file size, "data": text, "cut": False}`` after byte ``offset``.

    ``Http404`` when the run has no log that may be read.
    """
    with files.open_for(execution, FILE_NAME, limit=CHUNK) as log:
        size = log.size
        offset = min(max(offset, 0), size)
        log.seek(offset)
        chunk = log.read(CHUNK)
    # Nothing is lost here: the next poll asks from the new offset. Only a character cut in two waits for it.
    end = whole_characters(chunk) if offset + len(chunk) < size else len(chunk)
    return {"offset": offset + end, "size": size, "data": chunk[:end].decode("utf-8", errors="replace"), "cut": False}


def tail(execution: Execution, lines: int = TAIL_LINES) -> dict[str, Any]:
    """The last ``lines`` lines within the last ``CHUNK`` bytes, and the offset after them:
    ``{"offset", "size", "data", "cut"}``; ``cut`` when the last line alone did not fit and only its end is shown.

    ``Http404`` when the run has no log that may be read.
    """
    with files.open_for(execution, FILE_NAME, limit=CHUNK) as log:
        size = log.size
        start = max(0, size - CHUNK)
        log.seek(start)
        data = log.read(size - start)
    cut = False
    if start > 0:
        newline = data.find(b"\n")
        if 0 <= newline < len(data) - 1:
            data = data[newline + 1 :]  # the line the window begins inside is left out: whole lines only
        else:
            data = data[_first_character(data) :]  # one line longer than the window: its end, said so
            cut = True
    kept = data.splitlines(keepends=True)[-lines:]
    return {"offset": size, "size": size, "data": b"".join(kept).decode("utf-8", errors="replace"), "cut": cut}
