"""The audit log in the admin: listed and filtered, never added, changed or deleted there."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest

from audit.models import Entry

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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Entry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Entry | None = None) -> bool:
        return False
