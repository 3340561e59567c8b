"""Who may see and do what. The views and the API call these rather than check permissions themselves.

Everyone logged in is on the team and may read everything. Launching and cancelling need
``experiments.add_execution`` (the permission the API checks too). Editing and archiving runs
need ``experiments.change_execution``; deleting, restoring and emptying the trash
``experiments.delete_execution``. A share link grants
exactly one execution or one comparison, read-only, to anyone holding its token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

from experiments.models import Execution, ShareLink

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django.db.models import QuerySet

LAUNCH_PERMISSION = "experiments.add_execution"
# Curation: editing a run's title, notes and tags, and archiving it; moving it to the trash and back.
EDIT_PERMISSION = "experiments.change_execution"
DELETE_PERMISSION = "experiments.delete_execution"


def _executions() -> QuerySet[Execution]:
    return Execution.objects.select_related("experiment", "launched_by")


def get_execution_for_user(user: User | AnonymousUser, experiment: str, folder_name: str) -> Execution:
    """The execution at ``/experiments/<experiment>/executions/<folder_name>/``, or 404."""
    return get_object_or_404(_executions(), experiment__name=experiment, folder_name=folder_name)


def get_execution_by_id_for_user(user: User | AnonymousUser, execution_id: int) -> Execution:
    """Any execution by id (queued runs have no folder yet), or 404."""
    return get_object_or_404(_executions(), pk=execution_id)


def has_permission(user: User | AnonymousUser, permission: str) -> bool:
    return user.is_authenticated and user.has_perm(permission)


def can_launch(user: User | AnonymousUser) -> bool:
    return has_permission(user, LAUNCH_PERMISSION)


def require_launch_permission(user: User | AnonymousUser) -> None:
    """403 unless the user may launch and cancel runs."""
    if not can_launch(user):
        raise PermissionDenied(
            "You need the experiments.add_execution permission to launch or cancel runs. Ask an admin for it."
        )


def can_edit(user: User | AnonymousUser) -> bool:
    return has_permission(user, EDIT_PERMISSION)


def can_delete(user: User | AnonymousUser) -> bool:
    return has_permission(user, DELETE_PERMISSION)


def require_edit_permission(user: User | AnonymousUser) -> None:
    """403 unless the user may edit and archive runs."""
    if not can_edit(user):
        raise PermissionDenied(
            f"You need the {EDIT_PERMISSION} permission to edit or archive runs. Ask an admin for it."
        )


def require_delete_permission(user: User | AnonymousUser) -> None:
    """403 unless the user may move runs to the trash, restore them and empty the trash."""
    if not can_delete(user):
        raise PermissionDenied(
            f"You need the {DELETE_PERMISSION} permission to delete or restore runs. Ask an admin for it."
        )


def can_revoke(user: User | AnonymousUser, link: ShareLink) -> bool:
    return user.is_authenticated and (link.created_by_id == user.pk or user.is_staff)


def get_share_for_revoke(user: User | AnonymousUser, share_id: int) -> ShareLink:
    link = get_object_or_404(ShareLink, pk=share_id)
    if not can_revoke(user, link):
        raise PermissionDenied("Only whoever made a share link (or staff) can revoke it.")
    return link


def share_links_for(user: User) -> QuerySet[ShareLink]:
    """The active links a user may manage: their own, or everyone's for staff."""
    links = ShareLink.objects.select_related("execution", "execution__experiment").filter(revoked_at__isnull=True)
    return links if user.is_staff else links.filter(created_by=user)


def get_active_share(token: str, kind: str | None = None) -> ShareLink:
    """The share link with this token if it is active (and of ``kind``); 404 otherwise.

    Revoked, expired and unknown tokens look the same to a visitor: nothing is there.
    """
    link = ShareLink.objects.select_related("execution", "execution__experiment").filter(token=token).first()
    if link is None or not link.is_active() or (kind is not None and link.kind != kind):
        raise Http404("This share link does not exist, was revoked, or has expired.")
    return link


def require_share_downloads(link: ShareLink) -> None:
    if not link.allow_downloads:
        raise Http404("Downloads are not part of this share link.")
