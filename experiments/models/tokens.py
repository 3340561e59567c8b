"""Credentials: API tokens, read-only share links, and the URLs a Keras RemoteMonitor posts to."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

from .executions import Execution
from .projects import Project

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class ApiToken(models.Model):
    """A user's key for ``Authorization: Bearer <key>`` (``manage.py api_token USERNAME``).

    Only the key's SHA-256 is stored: whoever reads the database (or a backup of it) cannot
    make requests with it. The key is shown once, when it is made; ``--rotate`` makes a new one.
    """

    class Scope(models.TextChoices):
        ALL = "all", "everything its user may do"
        PUSH = "push", "only push run folders (manage.py push, gymnos_track.push)"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_token",
        help_text="Whose requests the token makes.",
    )
    digest = models.CharField(
        max_length=64, unique=True, help_text="SHA-256 of the key (hex); the key itself is not kept."
    )
    prefix = models.CharField(max_length=8, help_text="The key's first characters, to tell tokens apart.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was made (or last rotated).")
    scope = models.CharField(
        max_length=8,
        choices=Scope.choices,
        default=Scope.ALL,
        help_text="What it may do: everything its user may, or only push run folders (POST /api/push/...).",
    )
    project = models.ForeignKey(
        Project,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        help_text="The one project it may act in (empty: every project its user may); its user's role there still "
        "applies.",
    )
    read_only = models.BooleanField(
        default=False, help_text="It may only read (GET), whatever its user's role: for a dashboard or a reviewer."
    )

    def __str__(self) -> str:
        return f"API token of {self.user} ({self.prefix}…)"

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user: User, rotate: bool = False, scope: str = "all") -> tuple[ApiToken, str | None]:
        """``(token, key)``: a new key if the user has none or ``rotate`` (with ``scope``).

        Otherwise ``(token, None)``: the key is unknowable, only its hash is kept.
        """
        token = cls.objects.filter(user=user).first()
        if token is not None and not rotate:
            return token, None
        key = _new_token()
        if token is None:
            token = cls.objects.create(user=user, digest=cls.hash(key), prefix=key[:8], scope=scope)
        else:
            token.digest, token.prefix, token.created_at, token.scope = cls.hash(key), key[:8], timezone.now(), scope
            token.save(update_fields=["digest", "prefix", "created_at", "scope"])
        return token, key

    @classmethod
    def user_for(cls, key: str, scopes: tuple[str, ...] = ("all",)) -> User | None:
        """The active user a key belongs to, if its scope is one of ``scopes``; else None."""
        token = cls.objects.select_related("user").filter(digest=cls.hash(key), scope__in=scopes).first()
        if token is None or not token.user.is_active:
            return None
        user = token.user
        # What ``experiments.access`` narrows this request's roles by: one project, read-only.
        user.token_limits = TokenLimits(project_id=token.project_id, read_only=token.read_only)  # type: ignore[attr-defined]
        return user


@dataclasses.dataclass(frozen=True)
class TokenLimits:
    """A token's limits, on the user a request made with it acts as (``access.role_for`` applies them)."""

    project_id: int | None
    read_only: bool


def _new_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits: a link nobody can guess


class SecretURL(models.Model):
    """A URL whose token is its only credential (256 bits: nobody can guess it), and who made it."""

    token = models.CharField(
        max_length=64, unique=True, default=_new_token, help_text="The secret in the URL (43 URL-safe characters)."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="%(class)s_made",
        help_text="Who made it.",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was made.")

    class Meta:
        abstract = True


class ShareLink(SecretURL):
    """A read-only link to one execution or one comparison, for someone without an account.

    The token is the only credential: whoever holds ``/s/<token>/`` sees that execution (or
    those runs side by side) and nothing else, until it is revoked or expires.
    """

    class Kind(models.TextChoices):
        EXECUTION = "execution"
        COMPARISON = "comparison"

    kind = models.CharField(
        max_length=16, choices=Kind.choices, help_text="What the link shows: one execution or a comparison."
    )
    execution = models.ForeignKey(
        Execution,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="share_links",
        help_text="The execution shown (execution links only).",
    )
    runs = models.JSONField(
        default=list, blank=True, help_text="Execution ids compared, in order (comparison links only)."
    )
    allow_downloads = models.BooleanField(
        default=False, help_text="Whether visitors may download files (model, checkpoints, log, CSV)."
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="When the link stops working (empty: never).")
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="When it was revoked (empty: still active).")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        what = (
            f"execution {self.execution_id}"
            if self.kind == self.Kind.EXECUTION
            else f"comparison of {len(self.runs)} runs"
        )
        return f"share link to {what}"

    def is_active(self, now: dt.datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class PublishToken(SecretURL):
    """Where a Keras ``RemoteMonitor`` posts one execution's epochs: ``/publish/epoch/end/<token>/``."""

    execution = models.ForeignKey(
        Execution,
        on_delete=models.CASCADE,
        related_name="publish_tokens",
        help_text="The execution the posted epochs belong to.",
    )
    last_post_at = models.DateTimeField(null=True, blank=True, help_text="When the last epoch arrived.")

    def __str__(self) -> str:
        return f"publish token for execution {self.execution_id}"
