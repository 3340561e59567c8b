"""Reading an execution's log for the dashboard: its last lines, then whatever was appended.

The page asks once without an offset (the last ``TAIL_LINES`` lines and the offset they end
at), then polls with that offset and appends what comes back, like ``tail -f``.
"""

from __future__ import annotations

import os
from typing import Any

TAIL_LINES = 200
CHUNK = 256 * 1024  # the most one poll returns; the next poll continues from the new offset


def whole_characters(chunk: bytes) -> int:
    """Where ``chunk`` ends without cutting a UTF-8 character in two (the rest comes next call)."""
    for back in range(1, min(4, len(chunk)) + 1):
        byte = chunk[-back]
        if byte & 0b1100_0000 != 0b1000_0000:  # a lead byte (or ASCII): does its character fit?
            needed = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4 if byte >> 3 == 0b11110 else 1
            return len(chunk) - back if needed > back else len(chunk)
    return len(chunk)


def read_from(path: str | os.PathLike[str], offset: int) -> dict[str, Any]:
    """``{"offset": next offset, "size": file size, "data": text}`` after byte ``offset``."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            offset = min(max(offset, 0), size)
            handle.seek(offset)
            chunk = handle.read(CHUNK)
    except (FileNotFoundError, NotADirectoryError):
        return {"offset": 0, "size": 0, "data": ""}
    end = whole_characters(chunk) if offset + len(chunk) < size else len(chunk)
    return {"offset": offset + end, "size": size, "data": chunk[:end].decode("utf-8", errors="replace")}


def tail(path: str | os.PathLike[str], lines: int = TAIL_LINES) -> dict[str, Any]:
    """The last ``lines`` lines and the offset just after them: ``{"offset", "size", "data"}``."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            block, data = 16 * 1024, b""
            start = size
            while start > 0 and data.count(b"\n") <= lines:
                start = max(0, start - block)
                handle.seek(start)
                data = handle.read(size - start)
                block *= 2
    except (FileNotFoundError, NotADirectoryError):
        return {"offset": 0, "size": 0, "data": ""}
    kept = data.splitlines(keepends=True)[-lines:]
    return {"offset": size, "size": size, "data": b"".join(kept).decode("utf-8", errors="replace")}
