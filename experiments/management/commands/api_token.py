"""``python manage.py api_token USERNAME [--rotate] [--push-only]``: make the user's API token and print it, once.

``--push-only`` makes a token that can only push run folders (``manage.py push``, ``gymnos_track.push``):
what a training machine or a cluster job holds, which cannot read or launch anything.

Only the token's SHA-256 is stored, so it cannot be printed again: asked again, the command
says when the token was made and how it starts, and ``--rotate`` replaces it.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.models import Entry
from audit.recording import record
from experiments.models import ApiToken


class Command(BaseCommand):
    help = (
        "Make USERNAME's API token (for 'Authorization: Bearer <token>') and print it; "
        "shown once, --rotate replaces it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--rotate", action="store_true", help="replace the token with a new one (the old one stops working)"
        )
        parser.add_argument(
            "--push-only",
            action="store_true",
            help="a token that can only push run folders (manage.py push); with --rotate it replaces the token",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = options["username"]
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(
                f"no user named {username!r}; create one with: python manage.py createsuperuser"
            ) from None
        scope = ApiToken.Scope.PUSH if options["push_only"] else ApiToken.Scope.ALL
        token, key = ApiToken.issue(user, rotate=options["rotate"], scope=scope)
        if key is None:
            raise CommandError(
                f"{username} already has an API token "
                f"(made {token.created_at:%Y-%m-%d %H:%M} UTC, starting {token.prefix}…). "
                f"Tokens are stored hashed and cannot be shown again; to get a new one, which ends the old one: "
                f"python manage.py api_token {username} --rotate"
            )
        action = Entry.Action.API_TOKEN_ROTATE
        record(None, action, target=f"API token of {username}", user=username, via="manage.py api_token")
        self.stdout.write(key)
