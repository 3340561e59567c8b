"""Files of an execution folder: one at a time, or the whole folder as a streamed zip.

Every path goes through ``experiments.files`` (one rule for every reader): ``..``, absolute
paths, encoded traversal (Django decodes ``%2e%2e`` before routing) and links that lead out
all end in 404, the same answer as a file that is not there.
"""

import zipfile

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET
from zipstream import ZipStream

from experiments import files
from experiments.access import get_execution_for_user
from experiments.models import Execution


def serve_file(execution: Execution, relative: str) -> FileResponse:
    # The whole file as it was when opened, streamed in blocks (FileResponse reads it as it sends).
    handle = files.open_for(execution, relative, limit=None)
    return FileResponse(handle, as_attachment=True, filename=handle.name)


def zip_name(execution: Execution) -> str:
    return f"{execution.experiment.name}-{execution.folder_name}.zip"


def serve_zip(execution: Execution) -> StreamingHttpResponse:
    """The folder as a zip, compressed and sent while it is read: nothing is built in memory or on disk."""
    folder = files.execution_folder(execution)
    if folder is None:
        raise Http404("This execution has no folder yet.")
    stream = ZipStream(compress_type=zipfile.ZIP_DEFLATED, compress_level=6)
    prefix = execution.folder_name
    for relative, _ in files.walk(folder):
        # Each file is opened by the one reader when the zip reaches it, and read in blocks.
        stream.add(files.blocks(folder, relative), f"{prefix}/{relative}")
    response = StreamingHttpResponse(stream, content_type="application/zip")
    # Django's helper quotes what needs quoting and percent-encodes the rest (RFC 6266): a folder
    # named with a quote or a line break can neither add a parameter nor break the header.
    response["Content-Disposition"] = content_disposition_header(True, zip_name(execution))
    return response


@login_required
@require_GET
def file(request: HttpRequest, experiment: str, folder: str, path: str) -> FileResponse:
    return serve_file(get_execution_for_user(request.user, experiment, folder), path)


@login_required
@require_GET
def folder_zip(request: HttpRequest, experiment: str, folder: str) -> StreamingHttpResponse:
    return serve_zip(get_execution_for_user(request.user, experiment, folder))
