"""Alert rules and their deliveries in the admin: listed and filtered for staff, read-only (a rule is made and
deleted by its owner on the Alerts page or through /api/alerts, where it gets its audit entry). Staff who are
not superusers see the rules and deliveries of their projects' runs, experiments and sweeps only, and the
rules watching no one project's (every run I launch, everyone's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from experiments.admin_scope import in_visible_projects, sees_everything, visible_q
from sweeps.scope import visible_sweeps

from .models import Delivery, Rule

if TYPE_CHECKING:  # ModelAdmin takes its model's type only for the checker (not subscriptable at run time)
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin


class ReadOnly(_ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Rule)
class RuleAdmin(ReadOnly):
    list_display = ["pk", "owner", "kind", "scope", "channel", "failing", "created_at"]
    list_filter = ["kind", "scope", "channel", "failing"]
    search_fields = ["owner__username", "condition", "webhook_url"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rule]:
        found = super().get_queryset(request)
        if sees_everything(request):
            return found
        of_no_project = Q(execution__isnull=True, experiment__isnull=True, sweep__isnull=True)
        return found.filter(
            visible_q(request, "execution__experiment__project")
            | visible_q(request, "experiment__project")
            | Q(sweep__in=visible_sweeps(request.user))
            | of_no_project
        )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnly):
    list_display = ["key", "execution", "event", "status", "attempts", "created_at", "sent_at"]
    list_select_related = ["execution__experiment"]
    list_filter = ["status", "event"]
    search_fields = ["key", "message", "reason"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return in_visible_projects(request, super().get_queryset(request), "execution__experiment__project")
