"""``/api/push``: run folders pushed from another machine, in pieces (``manage.py push``, ``gymnos_track.push``).

    POST /api/push/begin   {"experiment", "folder", "files": [{"path", "size", "sha256"}]}
         -> {"state": "new" | "partial" | "exists", "have": {path: bytes the server holds}}
    PUT  /api/push/chunk?experiment=&folder=&path=&offset=   (the bytes as the body)
         -> {"have": bytes}; 409 {"detail", "have"} when the server holds another number of bytes
    POST /api/push/finish  {"experiment", "folder", "sync"}  -> {"execution", "status", "created"}
    POST /api/push/sync    {"runs": [{"experiment", "folder"}]}  -> {"indexed", "unchanged", "errors"}
    POST /api/push/live    {"experiment", "folder", "epochs": [{"epoch", "metrics"}]}
         -> {"execution", "epochs", "ignored"}

``live`` is the stream of a script training now (``gymnos_track.start(..., server=, token=)``): its epochs, in
batches, go to the row the folder is synced into when it is pushed (``experiments.index.live``).

A client pushing many folders finishes each with ``"sync": false`` and indexes them together at its
end: sync's batches cost a fraction of one sync per folder.

Only a token may push (no session: a machine pushes), a push-only one too
(``manage.py api_token USER --push-only``). Each endpoint takes ``?project=NAME``: the folder goes to that
project's place (``<root>/projects/<project>/...``, ``default`` at the root itself), so sync gives it to the
project; without it, the token's project when it is limited to one, else ``default``. The user needs the editor
role there (in default: the launch permission); 404 for a project they may not see. Every name and size
is checked as sync checks a folder (experiments.index.push).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.params.functions import Query  # the call (to mypy, ninja.Query is the annotation Query[T])

from experiments.api.base import Detail, PushToken, target_project
from experiments.index import live, push
from experiments.pipeline import fileops

router = Router(tags=["push"], auth=[PushToken()])  # a machine pushes: a token, no session


class PushedFile(Schema):
    path: str = Field(max_length=4096)
    size: int = Field(ge=0)
    sha256: str = Field(max_length=64)


class Begin(Schema):
    experiment: str = Field(max_length=1024)
    folder: str = Field(max_length=1024)
    files: list[PushedFile] = Field(max_length=push.MAX_FILES + 1)
    inline: dict[str, str] = Field(
        default_factory=dict, description="Whole small files, path -> base64 of their bytes (at most 512 KiB in all)."
    )
    sync: bool = Field(True, description="False: when finished, index it later with POST /api/push/sync.")


class Run(Schema):
    experiment: str = Field(max_length=1024)
    folder: str = Field(max_length=1024)
    sync: bool = Field(True, description="False: index it later, with others, through POST /api/push/sync.")


class Runs(Schema):
    runs: list[Run] = Field(max_length=push.MAX_SYNC + 1)


class StreamedEpoch(Schema):
    epoch: int = Field(ge=0, description="From 0, as Keras counts.")
    metrics: dict[str, float | None] = Field(description="Its values; null for NaN or infinity.")


class Streamed(Schema):
    experiment: str = Field(max_length=1024)
    folder: str = Field(max_length=1024)
    epochs: list[StreamedEpoch] = Field(max_length=live.MAX_EPOCHS_A_BATCH + 1)


class StreamedAnswer(Schema):
    execution: int
    epochs: int
    ignored: bool = Field(description="True once the folder itself was pushed: the folder is the truth.")


class Indexed(Schema):
    indexed: int
    unchanged: int
    errors: int


class Held(Schema):
    state: str = Field(description="new, partial, exists (already there), or pushed (finished with this request)")
    have: dict[str, int]
    execution: int | None = Field(None, description="When pushed: the run's id, as finish answers it.")
    status: str = ""
    created: bool = False


class Received(Schema):
    have: int


class Mismatch(Schema):
    detail: str
    have: int


class Finished(Schema):
    execution: int | None
    status: str
    created: bool


def _root() -> Path:
    """The trainings root, made if it is not there yet (as the engine makes it for its first run)."""
    root = Path(settings.GYMNOS_TRAININGS_ROOT).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


PROJECT = Query(
    None,
    max_length=63,
    description="The project to push into (GET /api/projects); default: the token's project when it is limited "
    "to one, else default. The editor role there.",
)


@router.post(
    "/begin",
    response={200: Held, 400: Detail, 403: Detail, 404: Detail},
    summary="Begin or resume pushing a run folder",
)
def begin(request: HttpRequest, body: Begin, project: str | None = PROJECT) -> Status[Any]:
    """What the server already holds of each file (``exists``: the run is there already, with these files)."""
    target = target_project(request, project)
    if isinstance(target, Status):
        return target
    try:
        inline = {path: base64.b64decode(text, validate=True) for path, text in body.inline.items()}
    except (binascii.Error, ValueError):  # ValueError: characters past ASCII
        return Status(400, {"detail": "inline: a value is not base64"})
    try:
        files = [f.model_dump() for f in body.files]
        return Status(200, push.begin(_root(), body.experiment, body.folder, files, inline, body.sync, target.name))
    except push.PushRefused as exc:
        return Status(400, {"detail": str(exc)})
    except fileops.Refused as exc:
        return Status(400, {"detail": f"refused: {exc}"})


@router.put(
    "/chunk",
    response={200: Received, 400: Detail, 403: Detail, 404: Detail, 409: Mismatch},
    summary="One piece of one file, at the offset the server holds",
)
def chunk(
    request: HttpRequest, experiment: str, folder: str, path: str, offset: int, project: str | None = PROJECT
) -> Status[Any]:
    target = target_project(request, project)
    if isinstance(target, Status):
        return target
    try:
        have = push.receive(_root(), experiment, folder, path, offset, request.body, target.name)
        return Status(200, {"have": have})
    except fileops.OffsetMismatch as exc:
        return Status(409, {"detail": f"{folder}/{path}: {exc}; send from there", "have": exc.size})
    except push.PushRefused as exc:
        return Status(400, {"detail": str(exc)})
    except fileops.Refused as exc:
        return Status(400, {"detail": f"refused: {exc}"})


@router.post(
    "/finish", response={200: Finished, 400: Detail, 403: Detail, 404: Detail}, summary="Check, move into place, sync"
)
def finish(request: HttpRequest, body: Run, project: str | None = PROJECT) -> Status[Any]:
    """Every file whole and its SHA-256 right: the folder is moved to its project's folder and indexed."""
    target = target_project(request, project)
    if isinstance(target, Status):
        return target
    try:
        return Status(200, push.finish(_root(), body.experiment, body.folder, body.sync, target.name))
    except push.PushRefused as exc:
        return Status(400, {"detail": str(exc)})
    except fileops.Refused as exc:
        return Status(400, {"detail": f"refused: {exc}"})


@router.post(
    "/sync", response={200: Indexed, 400: Detail, 403: Detail, 404: Detail}, summary="Index pushed folders together"
)
def sync(request: HttpRequest, body: Runs, project: str | None = PROJECT) -> Status[Any]:
    """The folders finished with ``sync: false``, indexed in batches (many runs pushed at once)."""
    target = target_project(request, project)
    if isinstance(target, Status):
        return target
    try:
        folders = [(run.experiment, run.folder) for run in body.runs]
        return Status(200, push.sync_pushed(_root(), folders, target.name))
    except push.PushRefused as exc:
        return Status(400, {"detail": str(exc)})


@router.post(
    "/live",
    response={200: StreamedAnswer, 400: Detail, 403: Detail, 404: Detail},
    summary="Epochs of a run training now",
)
def stream(request: HttpRequest, body: Streamed, project: str | None = PROJECT) -> Status[Any]:
    """A batch of a tracked script's epochs as it trains; its folder, pushed at its end, completes the same run."""
    target = target_project(request, project)
    if isinstance(target, Status):
        return target
    epochs = [(item.epoch, item.metrics) for item in body.epochs]
    try:
        return Status(200, live.record_streamed(request.user, body.experiment, body.folder, epochs, target))
    except (push.PushRefused, ValueError) as exc:
        return Status(400, {"detail": str(exc)})
