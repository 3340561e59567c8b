"""Alert rules and their deliveries in the admin: listed and filtered for staff, read-only (a rule is made and
deleted by its owner on the Alerts page or through /api/alerts, where it gets its audit entry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest

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


@admin.register(Delivery)
class DeliveryAdmin(ReadOnly):
    list_display = ["key", "event", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "event"]
    search_fields = ["key", "message", "reason"]
    date_hierarchy = "created_at"
