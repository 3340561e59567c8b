"""The audit log in the admin: listed and filtered, never added, changed or deleted there.

Staff who are not superusers see the entries of their projects' runs, of their projects (role changes), and
those of no project (logins, say); a superuser sees every entry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from audit.models import Entry
from experiments.access import visible_projects
from experiments.admin_scope import sees_everything, visible_q

if TYPE_CHECKING:  # django-stubs' ModelAdmin is generic in its model; Django's own cannot be subscripted at run time
    _EntryAdminBase = admin.ModelAdmin[Entry]
else:
    _EntryAdminBase = admin.ModelAdmin


@admin.register(Entry)
class EntryAdmin(_EntryAdminBase):
    list_display = ["at", "actor_name", "action", "target", "address"]
    list_filter = ["action", "actor_name"]
    search_fields = ["actor_name", "target", "address"]
    date_hierarchy = "at"
    readonly_fields = ["at", "actor", "actor_name", "address", "action", "execution", "target", "details"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Entry]:
        found = super().get_queryset(request)
        if sees_everything(request):
            return found
        names = list(visible_projects(request.user).values_list("name", flat=True))
        of_run = visible_q(request, "execution__experiment__project")
        # Without a run: a project's entry (its creation, a role change) names it in its details; a refusal
        # without a run (on an experiment of any project, say) is shown to the one refused only.
        of_project = Q(execution__isnull=True, details__project__in=names)
        of_none = Q(execution__isnull=True) & ~Q(details__has_key="project") & ~Q(action=Entry.Action.DENIED)
        refused = Q(execution__isnull=True, action=Entry.Action.DENIED, actor=request.user)
        return found.filter(of_run | of_project | of_none | refused)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Entry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Entry | None = None) -> bool:
        return False
