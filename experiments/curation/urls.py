"""This feature's pages (included in experiments/urls.py under the experiments namespace)."""

from django.urls import URLPattern, path

from . import pages, views

# One view archives and unarchives, one adds and removes tags: the URL says which.
ARCHIVE, UNARCHIVE = {"archived": True}, {"archived": False}

urlpatterns: list[URLPattern] = [
    # one run, from its page
    path("executions/<int:execution_id>/notes/", views.edit_notes, name="edit-notes"),
    path("executions/<int:execution_id>/tags/add/", views.tag, {"add": True}, name="add-tag"),
    path("executions/<int:execution_id>/tags/remove/", views.tag, {"add": False}, name="remove-tag"),
    path("executions/<int:execution_id>/archive/", views.archive, ARCHIVE, name="archive"),
    path("executions/<int:execution_id>/unarchive/", views.archive, UNARCHIVE, name="unarchive"),
    path("executions/<int:execution_id>/delete/", views.delete, name="delete"),
    path("executions/<int:execution_id>/restore/", views.restore, name="restore"),
    # the experiment table's selection, whole experiments
    path("runs/bulk/", pages.bulk, name="bulk"),
    path("experiments/<str:experiment>/archive/", pages.archive_experiment, ARCHIVE, name="archive-experiment"),
    path("experiments/<str:experiment>/unarchive/", pages.archive_experiment, UNARCHIVE, name="unarchive-experiment"),
    # the trash, and the disk
    path("trash/", pages.trash_page, name="trash"),
    path("trash/empty/", pages.empty, name="empty-trash"),
    path("disk.json", pages.disk_usage, name="disk-usage"),
]
