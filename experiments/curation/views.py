"""One run's curation from its page: title, notes and tags, archive, delete and restore.

Each view: the permission, the run, the form, the action (``edits`` / ``trash``), a message, and a
redirect. An action that cannot be done (the run is running, has no folder...) is a message saying
why, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.http import require_POST

from experiments.access import get_execution_by_id_for_user, require_delete_permission, require_edit_permission
from experiments.display import execution_url
from experiments.models import Execution

from . import edits, trash
from .edits import CurationError, label
from .forms import NotesForm, TagForm


def form_errors(form: Form) -> str:
    """A form's errors on one line: ``tags: the tag 'a,b' has a comma; ...``."""
    parts = []
    for name, errors in form.errors.items():
        text = " ".join(str(error) for error in errors)
        parts.append(text if name == "__all__" else f"{name}: {text}")
    return "; ".join(parts)


def _act(request: HttpRequest, execution: Execution, action: Callable[[], str]) -> HttpResponseRedirect:
    """Run ``action`` (returning the success message), turning a ``CurationError`` into an error message."""
    try:
        done = action()
    except CurationError as exc:
        messages.error(request, f"{exc}.")
    else:
        if done:
            messages.success(request, done)
    return redirect(execution_url(execution))


def _editable(request: HttpRequest, execution_id: int) -> Execution:
    """The run, for a user who may edit runs (403 otherwise; 404 for no such run)."""
    execution = get_execution_by_id_for_user(request.user, execution_id)
    require_edit_permission(request.user, execution)
    return execution


@login_required
@require_POST
def edit_notes(request: HttpRequest, execution_id: int) -> HttpResponseRedirect:
    execution = _editable(request, execution_id)
    form = NotesForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Nothing saved: {form_errors(form)}")
        return redirect(execution_url(execution))
    data = form.cleaned_data

    def save() -> str:
        changed = edits.edit(execution, title=data["title"], notes=data["notes"], tags=data["tags"], request=request)
        return f"Saved the notes of {label(execution)}." if changed else ""

    return _act(request, execution, save)


@login_required
@require_POST
def tag(request: HttpRequest, execution_id: int, add: bool) -> HttpResponseRedirect:
    """Add (``add``, from the URL) or remove the tags the form names."""
    execution = _editable(request, execution_id)
    form = TagForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"No tag {'added' if add else 'removed'}: {form_errors(form)}")
        return redirect(execution_url(execution))
    tags = form.cleaned_data["tag"]

    def save() -> str:
        if add:
            edits.add_tags([execution], tags, request=request)
            return f"Tagged {label(execution)} {', '.join(tags)}."
        edits.remove_tags([execution], tags, request=request)
        return f"Removed {', '.join(tags)} from {label(execution)}."

    return _act(request, execution, save)


@login_required
@require_POST
def archive(request: HttpRequest, execution_id: int, archived: bool) -> HttpResponseRedirect:
    """Archive the run, or (``archived`` False, from the URL) unarchive it."""
    execution = _editable(request, execution_id)

    def save() -> str:
        if not edits.set_archived(execution, archived, request=request):
            return ""
        if archived:
            return f"Archived {label(execution)}: the default tables and charts no longer show it."
        return f"Unarchived {label(execution)}."

    return _act(request, execution, save)


@login_required
@require_POST
def delete(request: HttpRequest, execution_id: int) -> HttpResponseRedirect:
    execution = get_execution_by_id_for_user(request.user, execution_id)
    require_delete_permission(request.user, execution)
    try:
        size = trash.delete(execution, request=request)
    except CurationError as exc:
        messages.error(request, f"Not deleted: {exc}.")
        return redirect(execution_url(execution))
    messages.success(
        request, f"Moved {label(execution)} ({filesizeformat(size)}) to the trash; it can be restored from there."
    )
    return redirect(reverse("experiments:experiment", args=[execution.experiment.name]))


@login_required
@require_POST
def restore(request: HttpRequest, execution_id: int) -> HttpResponseRedirect:
    execution = get_execution_by_id_for_user(request.user, execution_id)
    require_delete_permission(request.user, execution)
    try:
        trash.restore(execution, request=request)
    except CurationError as exc:
        messages.error(request, f"Not restored: {exc}.")
        return redirect(reverse("experiments:trash"))
    messages.success(request, f"Restored {label(execution)} to where it was.")
    return redirect(execution_url(execution))
