"""The admin over the index: browse what sync found. The folders are the record of truth, so
everything read from them is shown read-only, and nothing is deleted here: a run leaves through the
trash (its page, the API), which moves its folder and keeps it restorable."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib import admin
from django.db.models import Count, Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.models import Entry
from audit.recording import record
from experiments import membership
from experiments.access import visible_projects
from experiments.admin_scope import ProjectScopedAdmin, sees_everything
from experiments.display import counted
from experiments.templatetags.gymnos import metric

from .models import Execution, Experiment, MetricHistory, Project, ProjectRole

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _Counted(TypedDict):
        execution_count: int

    # django-stubs' admin classes are generic in their models; Django's own cannot be subscripted at run time.
    _ModelAdmin = admin.ModelAdmin[Any]
    _HistoryInline = admin.TabularInline[MetricHistory, Execution]
else:
    _ModelAdmin = admin.ModelAdmin
    _HistoryInline = admin.TabularInline


def pretty_json(value: Any) -> SafeString:
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>', json.dumps(value, indent=2, sort_keys=True)
    )


def _json_field(name: str, description: str) -> Callable[[admin.ModelAdmin[Any], Model], SafeString]:
    @admin.display(description=description)
    def show(self: admin.ModelAdmin[Any], obj: Model) -> SafeString:
        return pretty_json(getattr(obj, name))

    return show


class NoDeleteAdmin(ProjectScopedAdmin):
    """No "Delete selected", no delete button: runs are deleted through the trash only. Staff who are not
    superusers see the objects of their projects only (``experiments.admin_scope``)."""

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Experiment)
class ExperimentAdmin(NoDeleteAdmin):
    project_path = "project"
    list_display = ["name", "project", "execution_count", "created_at"]
    list_filter = [("project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Experiment]:
        return super().get_queryset(request).annotate(execution_count=Count("executions"))

    @admin.display(ordering="execution_count", description="executions")
    def execution_count(self, obj: WithAnnotations[Experiment, _Counted]) -> int:
        return obj.execution_count


class MetricHistoryInline(_HistoryInline):
    model = MetricHistory
    readonly_fields = fields = ("name", "length", "values_shown")
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[MetricHistory]:
        return super().get_queryset(request).defer("values")  # the chart copy is shown: a bounded read

    def has_add_permission(self, request: HttpRequest, obj: Execution | None = None) -> bool:
        return False

    @admin.display(description="values (as the chart draws them)")
    def values_shown(self, obj: MetricHistory) -> str:
        return ", ".join("null" if value is None else f"{value:.6g}" for value in obj.chart.get("y", []))


# Read from the folder on every sync: editing them here would be overwritten, so they are shown, not edited.
FOLDER_FIELDS = [
    "experiment", "folder_name", "folder_path", "title", "tags", "config_shown", "elapsed_shown", "hardware_shown",
    "trackers_shown", "summary_shown", "test_metrics_shown", "epochs", "final_loss", "final_val_loss", "best_val_loss",
    "test_loss", "artifacts_shown", "started_at", "finished_at", "fingerprint", "synced_at", "created_at", "updated_at",
]  # fmt: skip


@admin.register(Execution)
class ExecutionAdmin(NoDeleteAdmin):
    list_display = [
        "__str__",
        "title",
        "status",
        "epochs",
        "val_loss_shown",
        "test_loss_shown",
        "started_at",
        "has_error",
    ]
    list_filter = ["status", ("experiment", admin.RelatedOnlyFieldListFilter)]  # only experiments listed
    list_select_related = ["experiment"]
    search_fields = ["folder_name", "title", "experiment__name", "tags"]
    date_hierarchy = "started_at"
    fields = ["status", "error", *FOLDER_FIELDS]
    readonly_fields = ["status", "error", *FOLDER_FIELDS]
    inlines = [MetricHistoryInline]
    actions = ["mark_failed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # an execution comes from a folder (sync) or a launched run, never typed in

    config_shown = _json_field("config", "config (training_config.json)")
    elapsed_shown = _json_field("elapsed", "elapsed (seconds per stage)")
    hardware_shown = _json_field("hardware", "hardware")
    trackers_shown = _json_field("trackers", "trackers")
    summary_shown = _json_field("summary", "summary (last and best per metric)")
    test_metrics_shown = _json_field("test_metrics", "test metrics")
    artifacts_shown = _json_field("artifacts", "artifacts")

    # Four significant digits, as the pages show them (30.89472198486328 -> 30.89); sorted by the full value.
    @admin.display(ordering="final_val_loss", description="val_loss")
    def val_loss_shown(self, obj: Execution) -> str:
        return metric(obj.final_val_loss)

    @admin.display(ordering="test_loss", description="test_loss")
    def test_loss_shown(self, obj: Execution) -> str:
        return metric(obj.test_loss)

    @admin.display(boolean=True, description="error")
    def has_error(self, obj: Execution) -> bool:
        return bool(obj.error)

    @admin.action(description="Mark selected queued or running executions as failed (stuck)")
    def mark_failed(self, request: HttpRequest, queryset: QuerySet[Execution]) -> None:
        """The way out for a run stuck as queued or running; ended runs are left as they ended."""
        reason = f"marked failed in the admin by {request.user.get_username()}: it was stuck"
        moved = sum(Execution.objects.fail(pk, reason) for pk in queryset.values_list("pk", flat=True))
        self.message_user(
            request, f"Marked {counted(moved, 'execution')} failed; {queryset.count() - moved} had already ended."
        )


@admin.register(MetricHistory)
class MetricHistoryAdmin(NoDeleteAdmin):
    project_path = "execution__experiment__project"
    list_display = ["name", "execution", "length"]
    list_filter = [("execution__experiment", admin.RelatedOnlyFieldListFilter), "name"]
    list_select_related = ["execution__experiment"]
    search_fields = ["name", "execution__folder_name", "execution__experiment__name"]
    readonly_fields = fields = ("execution", "name", "length", "values_shown")

    def get_queryset(self, request: HttpRequest) -> QuerySet[MetricHistory]:
        return super().get_queryset(request).defer("values", "chart")  # the list shows lengths; a row, its values

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    values_shown = _json_field("values", "values")


class ProjectRoleInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ProjectRole
    extra = 1
    autocomplete_fields = ["user", "group"]


@admin.register(Project)
class ProjectAdmin(_ModelAdmin):
    """Projects and their members (roles are also given with ``manage.py project grant``)."""

    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [ProjectRoleInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        found = super().get_queryset(request)
        return found if sees_everything(request) else found.filter(pk__in=visible_projects(request.user))

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:  # audited as ``manage.py project create`` is
            record(request, Entry.Action.PROJECT_CREATE, target=f"project {obj.name}", project=obj.name)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Roles changed in the inline go through ``membership``, so each grant and revoke is audited exactly as the
        command's and the project page's are (a row whose user or group was changed revokes the old holder)."""
        if formset.model is not ProjectRole:
            super().save_formset(request, form, formset, change)
            return
        project = form.instance
        changed = formset.save(commit=False)
        for role in formset.deleted_objects:
            membership.revoke(project, membership.Holder(user=role.user, group=role.group), request=request)
        for role in changed:
            if role.pk is not None:
                stored = ProjectRole.objects.get(pk=role.pk)
                if (stored.user_id, stored.group_id) != (role.user_id, role.group_id):
                    membership.revoke(project, membership.Holder(user=stored.user, group=stored.group), request=request)
            membership.grant(project, membership.Holder(user=role.user, group=role.group), role.role, request=request)
