"""Files of an execution folder: one at a time, or the whole folder as a streamed zip.

Every path resolves inside the execution folder, with symlinks followed: ``..``, absolute
paths, encoded traversal (Django decodes ``%2e%2e`` before routing) and links that lead out
all end in 404, the same answer as a file that is not there.
"""

import os
import zipfile

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.views.decorators.http import require_GET

from experiments.access import get_execution_for_user

FIXED = ["model.h5", "training_config.json", "metrics.json", "execution.log"]
CHECKPOINT_SUFFIXES = (".h5", ".hdf5", ".keras")


def _inside(real, root):
    return real == root or real.startswith(root + os.sep)


def folder_of(execution):
    """The execution folder's real path, if it has one under the trainings root (else None)."""
    if not execution.folder_path:
        return None
    real = os.path.realpath(execution.folder_path)
    if not _inside(real, os.path.realpath(settings.GYMNOS_TRAININGS_ROOT)) or not os.path.isdir(real):
        return None
    return real


def resolve_inside(execution, relative):
    """The real path of ``relative`` inside the execution folder, or Http404."""
    folder = folder_of(execution)
    if folder is None or not relative or "\x00" in relative or "\\" in relative:
        raise Http404("No such file in this execution.")
    parts = relative.split("/")
    if os.path.isabs(relative) or any(part in {"", ".", ".."} for part in parts):
        raise Http404("No such file in this execution.")
    real = os.path.realpath(os.path.join(folder, *parts))
    if not _inside(real, folder) or real == folder or not os.path.isfile(real):
        raise Http404("No such file in this execution.")
    return real


def _files(folder):
    """``(relative path, real path)`` of every regular file in the folder, links leading out skipped."""
    for directory, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if _inside(os.path.realpath(os.path.join(directory, d)), folder)
            and not os.path.islink(os.path.join(directory, d))
        )
        for name in sorted(filenames):
            path = os.path.join(directory, name)
            real = os.path.realpath(path)
            if _inside(real, folder) and os.path.isfile(real):
                yield os.path.relpath(path, folder).replace(os.sep, "/"), real


def list_downloads(execution):
    """What the page offers: the fixed files that exist, then every checkpoint, each ``{path, bytes}``.

    Read from the folder (not the index), so checkpoints show up while the run trains.
    """
    folder = folder_of(execution)
    if folder is None:
        return []
    found = {relative: real for relative, real in _files(folder)}
    chosen = [name for name in FIXED if name in found]
    chosen += [name for name in sorted(found) if name.startswith("callbacks/") and name.endswith(CHECKPOINT_SUFFIXES)]
    return [{"path": name, "bytes": _size(found[name])} for name in chosen]


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def serve_file(execution, relative):
    real = resolve_inside(execution, relative)
    return FileResponse(open(real, "rb"), as_attachment=True, filename=os.path.basename(real))


def zip_name(execution):
    return f"{execution.experiment.name}-{execution.folder_name}.zip"


def serve_zip(execution):
    """The folder as a zip, compressed and sent while it is read: nothing is built in memory or on disk."""
    from zipstream import ZipStream

    folder = folder_of(execution)
    if folder is None:
        raise Http404("This execution has no folder yet.")
    stream = ZipStream(compress_type=zipfile.ZIP_DEFLATED, compress_level=6)
    prefix = execution.folder_name
    for relative, real in _files(folder):
        stream.add_path(real, f"{prefix}/{relative}")
    response = StreamingHttpResponse(stream, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{zip_name(execution)}"'
    return response


@login_required
@require_GET
def file(request, experiment, folder, path):
    return serve_file(get_execution_for_user(request.user, experiment, folder), path)


@login_required
@require_GET
def folder_zip(request, experiment, folder):
    return serve_zip(get_execution_for_user(request.user, experiment, folder))
