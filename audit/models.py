"""One entry per thing a person did to the team's runs and links; entries are never edited."""

from __future__ import annotations

from django.db import models

from experiments.models.fields import json_object, person


class Entry(models.Model):
    """Who did what to what, when, and from which address."""

    class Action(models.TextChoices):
        LAUNCH = "launch"
        CANCEL = "cancel"
        RESUME = "resume"
        EDIT = "edit"
        ARCHIVE = "archive"
        UNARCHIVE = "unarchive"
        DELETE = "delete"
        RESTORE = "restore"
        EMPTY_TRASH = "empty_trash"
        PRUNE_CHECKPOINTS = "prune_checkpoints"
        SHARE_CREATE = "share_create"
        SHARE_REVOKE = "share_revoke"
        PUBLISH_TOKEN_CREATE = "publish_token_create"
        API_TOKEN_ROTATE = "api_token_rotate"
        SWEEP_LAUNCH = "sweep_launch"
        SWEEP_CANCEL = "sweep_cancel"
        ALERT_CREATE = "alert_create"
        ALERT_DELETE = "alert_delete"
        PROJECT_CREATE = "project_create"
        ROLE_GRANT = "role_grant"
        ROLE_REVOKE = "role_revoke"
        DENIED = "denied"

    at = models.DateTimeField(auto_now_add=True, help_text="When it happened.")
    actor = person("audit_entries", "Who did it (empty: the command line, or a user since removed).")
    actor_name = models.CharField(
        max_length=150, blank=True, help_text="Their user name then (kept if the user is removed)."
    )
    address = models.GenericIPAddressField(null=True, blank=True, help_text="The address the request came from.")
    action = models.CharField(max_length=32, choices=Action.choices, help_text="What was done.")
    execution = models.ForeignKey(
        "experiments.Execution",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_entries",
        help_text="The execution it was done to, if any.",
    )
    target = models.CharField(max_length=255, blank=True, help_text='What it was done to, in words: "share link 4".')
    details = json_object('What changed: {"tags": ["a", "b"]}.')

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "entries"
        indexes = [
            # The admin's list, newest first, and its filter by action.
            models.Index(fields=["action", "-at"], name="audit_by_action"),
            # An execution page's own history.
            models.Index(fields=["execution", "-at"], name="audit_by_execution"),
        ]

    def __str__(self) -> str:
        who = self.actor_name or "the command line"
        return f"{who} {self.get_action_display().lower()} {self.target}".strip()
