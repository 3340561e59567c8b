"""``python manage.py api_token USERNAME``: print the user's API token, creating it on first call."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from experiments.models import ApiToken


class Command(BaseCommand):
    help = "Print USERNAME's API token (for 'Authorization: Bearer <token>'), creating it on first call."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--rotate", action="store_true", help="replace the token with a new one")

    def handle(self, *args, **options):
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: options["username"]})
        except User.DoesNotExist:
            raise CommandError(f"no user named {options['username']!r}; create one with: python manage.py createsuperuser") from None
        token = ApiToken.for_user(user, rotate=options["rotate"])
        self.stdout.write(token.key)
