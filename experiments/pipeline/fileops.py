"""Every file Gymnos deletes, moves or replaces goes through here, and no symbolic link is ever followed.

Each operation names a ``root`` it trusts (the trainings root, a run's folder, the dataset cache) and a
path inside it, absolute or relative. The root is opened as it is (it may itself be a link: it is
configuration); below it, every folder on the way is opened with ``O_NOFOLLOW`` relative to the one
above (``dir_fd``), so a folder that is a link is refused, not followed, even if it is swapped in
between a check and the act. The last name is acted on without following it: a link there is
removed, or replaced, as a link, and its target is never touched::

    freed = remove(root, "boston/executions/06-16-31__08-04-2019/callbacks/model_checkpoint/w.05.h5")
    move(root, "boston/executions/06-16-31__08-04-2019", ".trash/boston/executions/06-16-31__08-04-2019")
    write(folder, "evaluation.json", data)          # atomic: a new file renamed over the old name

A refusal is ``Refused`` (an ``OSError``), whose message names the path and says why:
``trainings/alias is a symbolic link; Gymnos never follows links when it deletes or moves files``.

Folders are removed with ``shutil.rmtree(name, dir_fd=...)``, whose file-descriptor walk removes a
link inside as a link and re-checks each folder it enters (``shutil.rmtree.avoids_symlink_attacks``,
true on Linux and macOS since Python 3.3; ``dir_fd`` since 3.11). Where the platform lacks it,
folders are not removed at all. Django-free: the engine uses it for its own files.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

StrPath = str | os.PathLike[str]

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(OSError):
    """A delete, move or write that would have followed a link or left its root; nothing was changed."""

    @classmethod
    def link(cls, path: StrPath) -> Refused:
        return cls(f"{path} is a symbolic link; Gymnos never follows links when it deletes or moves files")


def remove(root: StrPath, path: StrPath, *, missing_ok: bool = False) -> int:
    """Remove ``path`` (a file, a link as a link, or a folder with all it holds); returns the bytes freed."""
    parts = _parts(root, path)
    with _parent(root, parts) as folder:
        try:
            status = os.lstat(parts[-1], dir_fd=folder)
        except FileNotFoundError:
            if missing_ok:
                return 0
            raise
        freed = _tree_bytes(folder, parts[-1]) if stat.S_ISDIR(status.st_mode) else _bytes(status)
        _remove_entry(folder, parts[-1], path)
        return freed


def move(root: StrPath, source: StrPath, target: StrPath, *, replace: bool = False) -> None:
    """Rename ``source`` to ``target`` (both inside ``root``), creating ``target``'s missing folders.

    ``source`` may not be a link (moving one would take its target's place somewhere new); an
    existing ``target`` is ``FileExistsError`` unless ``replace``. Across filesystems (``EXDEV``)
    the tree is copied (links as links), then the source removed; a failed copy is removed again.
    """
    source_parts, target_parts = _parts(root, source), _parts(root, target)
    with _parent(root, source_parts) as source_folder:
        if stat.S_ISLNK(os.lstat(source_parts[-1], dir_fd=source_folder).st_mode):
            raise Refused.link(source)
        with _parent(root, target_parts, create=True) as target_folder:
            if not replace and _lexists(target_folder, target_parts[-1]):
                raise FileExistsError(errno.EEXIST, "something already sits there", os.fspath(target))
            try:
                os.rename(source_parts[-1], target_parts[-1], src_dir_fd=source_folder, dst_dir_fd=target_folder)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _copy_then_remove(source_folder, source_parts[-1], target_folder, target_parts[-1], replace)


def copy_file(source_root: StrPath, source: StrPath, target_root: StrPath, target: StrPath) -> None:
    """Copy the plain file ``source`` (inside ``source_root``) to ``target`` (inside ``target_root``), creating
    ``target``'s missing folders: a fork's start, copied from its parent's folder into its own.

    No link is followed on either side: a link at ``source`` (or a folder on the way that is one) is ``Refused``;
    so is anything there that is not a plain file. The copy is written under a temporary name and renamed into
    place, so ``target`` is whole or absent; an existing ``target`` is ``FileExistsError``.
    """
    source_parts, target_parts = _parts(source_root, source), _parts(target_root, target)
    with _parent(source_root, source_parts) as source_folder:
        status = os.lstat(source_parts[-1], dir_fd=source_folder)
        if stat.S_ISLNK(status.st_mode):
            raise Refused.link(source)
        if not stat.S_ISREG(status.st_mode):
            raise Refused(f"{os.fspath(source)} is not a plain file; only a file is copied")
        with _parent(target_root, target_parts, create=True) as target_folder:
            partial = f".{target_parts[-1]}.{secrets.token_hex(6)}.partial"
            try:
                _copy(source_folder, source_parts[-1], target_folder, partial)
                if _lexists(target_folder, target_parts[-1]):
                    raise FileExistsError(errno.EEXIST, "something already sits there", os.fspath(target))
                os.rename(partial, target_parts[-1], src_dir_fd=target_folder, dst_dir_fd=target_folder)
            except BaseException:
                if _lexists(target_folder, partial):
                    os.unlink(partial, dir_fd=target_folder)
                raise


def write(root: StrPath, path: StrPath, data: bytes, *, create: bool = False, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically: a reader sees the old file or the new one, never half.
    ``create`` makes its missing folders (none of them a link). ``durable`` False: not fsynced (still whole after
    the process is killed, as the system keeps what it was given; maybe the old file after the machine crashes).

    The new bytes go to a fresh file (``O_EXCL``, a random name) beside it, flushed to disk, then
    renamed over the name: a link there is replaced by the file, never written through.
    """
    parts = _parts(root, path)
    with _parent(root, parts, create=create) as folder:
        temporary = f".{parts[-1]}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        descriptor = os.open(temporary, flags, 0o666, dir_fd=folder)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                if durable:
                    os.fsync(handle.fileno())
            os.replace(temporary, parts[-1], src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            try:
                os.unlink(temporary, dir_fd=folder)
            except FileNotFoundError:
                pass
            raise


def append(root: StrPath, path: StrPath, data: bytes, offset: int) -> int:
    """Add ``data`` to the file ``path`` (made, with its folders, if missing) when it holds exactly ``offset``
    bytes; returns its new size. A file of another size is left as it is: ``OffsetMismatch`` says its size.

    For uploads in pieces: a piece sent twice, or after a lost answer, is refused, never written twice.
    A link at ``path`` is refused, never written through.
    """
    parts = _parts(root, path)
    with _parent(root, parts, create=True) as folder:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            descriptor = os.open(parts[-1], flags, 0o666, dir_fd=folder)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Refused.link(path) from None
            raise
        with os.fdopen(descriptor, "ab") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise Refused(f"{path} is not a regular file")
            if status.st_size != offset:
                raise OffsetMismatch(status.st_size)
            handle.write(data)
            return offset + len(data)


class OffsetMismatch(ValueError):
    """``append`` at an offset other than the file's size; ``size`` is what the file holds."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the file holds {size:,} bytes")
        self.size = size


def remove_empty(root: StrPath, path: StrPath, stop: StrPath) -> None:
    """Remove the folder ``path`` and then its parents while they are empty, up to (not including) ``stop``."""
    parts, until = _parts(root, path), _parts(root, stop)
    while len(parts) > len(until) and parts[: len(until)] == until:
        try:
            with _parent(root, parts) as folder:
                os.rmdir(parts[-1], dir_fd=folder)  # a link is not a folder: ENOTDIR, never followed
        except OSError:
            return
        parts = parts[:-1]


def size(root: StrPath, path: StrPath) -> int:
    """The bytes of the regular files at or under ``path``; a link counts for nothing and is not followed."""
    parts = _parts(root, path)
    with _parent(root, parts) as folder:
        status = os.lstat(parts[-1], dir_fd=folder)
        return _tree_bytes(folder, parts[-1]) if stat.S_ISDIR(status.st_mode) else _bytes(status)


# --- walking without following -------------------------------------------------------------------


def _parts(root: StrPath, path: StrPath) -> tuple[str, ...]:
    """``path``'s names below ``root``, read from the text alone (nothing on disk is resolved here)."""
    text = os.fspath(path)
    relative = text
    if os.path.isabs(text):
        bases = {os.path.abspath(root), os.path.realpath(root)}
        base = next((base for base in bases if text.startswith(base.rstrip(os.sep) + os.sep)), None)
        if base is None:
            raise Refused(f"{text} is not inside {root}; Gymnos deletes, moves and writes only inside it")
        relative = text[len(base.rstrip(os.sep)) + 1 :]
    parts = tuple(relative.split(os.sep))
    if "\x00" in relative or any(part in {"", ".", ".."} for part in parts):
        raise Refused(f"{text!r} is not a plain path inside {root} (an empty, '.' or '..' part)")
    return parts


@contextmanager
def _parent(root: StrPath, parts: tuple[str, ...], create: bool = False) -> Iterator[int]:
    """A descriptor of the folder holding ``parts[-1]``, each folder on the way opened without following."""
    with ExitStack() as stack:
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stack.callback(os.close, folder)
        for index, name in enumerate(parts[:-1]):
            folder = _open_folder(folder, name, Path(root, *parts[: index + 1]), create)
            stack.callback(os.close, folder)
        yield folder


def _open_folder(parent: int, name: str, shown: Path, create: bool) -> int:
    for _ in range(3):  # a folder made or removed meanwhile by another process: look again
        try:
            return os.open(name, _DIRECTORY, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            try:
                os.mkdir(name, dir_fd=parent)
            except FileExistsError:
                pass
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(parent, name):
                raise Refused.link(shown) from None
            raise
    raise FileNotFoundError(errno.ENOENT, "the folder kept disappearing", str(shown))


def _is_link(folder: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=folder).st_mode)
    except OSError:
        return False


def _lexists(folder: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=folder)
    except FileNotFoundError:
        return False
    return True


def _tree_bytes(parent: int, name: str) -> int:
    total = 0
    for _, _, files, folder in os.fwalk(name, dir_fd=parent, follow_symlinks=False):
        for file in files:
            try:
                total += _bytes(os.lstat(file, dir_fd=folder))
            except OSError:
                continue
    return total


def _bytes(status: os.stat_result) -> int:
    return status.st_size if stat.S_ISREG(status.st_mode) else 0


# --- across filesystems --------------------------------------------------------------------------


def _copy_then_remove(source_folder: int, source: str, target_folder: int, target: str, replace: bool) -> None:
    """Copy under a temporary name beside ``target``, rename it into place, then remove the source.

    Until the rename nothing but the partial copy exists, and a failure removes only that.
    """
    partial = f".{target}.{secrets.token_hex(6)}.partial"
    try:
        _copy(source_folder, source, target_folder, partial)
        if not replace and _lexists(target_folder, target):
            raise FileExistsError(errno.EEXIST, "something already sits there", target)
        os.rename(partial, target, src_dir_fd=target_folder, dst_dir_fd=target_folder)
    except BaseException:
        if _lexists(target_folder, partial):
            _remove_entry(target_folder, partial, partial)
        raise  # the source is whole: nothing of it was removed yet
    _remove_entry(source_folder, source, source)


def _remove_entry(folder: int, name: str, shown: StrPath) -> None:
    """Unlink ``name`` (a link as a link), or remove the folder ``name`` with the descriptor-walking rmtree."""
    if not stat.S_ISDIR(os.lstat(name, dir_fd=folder).st_mode):
        os.unlink(name, dir_fd=folder)
    elif shutil.rmtree.avoids_symlink_attacks:
        shutil.rmtree(name, dir_fd=folder)
    else:
        raise Refused(f"{shown}: this platform cannot remove a folder without following links; remove it by hand")


def _copy(source_folder: int, name: str, target_folder: int, target: str) -> None:
    """Copy ``name`` as ``target``: folders walked by descriptor, files opened ``O_NOFOLLOW``, links as links."""
    status = os.lstat(name, dir_fd=source_folder)
    if stat.S_ISLNK(status.st_mode):
        os.symlink(os.readlink(name, dir_fd=source_folder), target, dir_fd=target_folder)
    elif stat.S_ISDIR(status.st_mode):
        os.mkdir(target, stat.S_IMODE(status.st_mode), dir_fd=target_folder)
        source_inner = os.open(name, _DIRECTORY, dir_fd=source_folder)
        try:
            target_inner = os.open(target, _DIRECTORY, dir_fd=target_folder)
            try:
                for entry in sorted(os.listdir(source_inner)):
                    _copy(source_inner, entry, target_inner, entry)
            finally:
                os.close(target_inner)
        finally:
            os.close(source_inner)
        os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns), dir_fd=target_folder, follow_symlinks=False)
    elif stat.S_ISREG(status.st_mode):
        reader = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source_folder)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            writer = os.open(target, flags, stat.S_IMODE(status.st_mode), dir_fd=target_folder)
            with open(reader, "rb", closefd=False) as source, open(writer, "wb") as copy:
                shutil.copyfileobj(source, copy, 1 << 20)
        finally:
            os.close(reader)
        os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns), dir_fd=target_folder, follow_symlinks=False)
    # sockets, pipes and devices are not part of a run; they are left out of the copy
