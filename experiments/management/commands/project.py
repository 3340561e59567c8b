"""``python manage.py project create|grant|revoke|list``: projects and who holds which role in them.

    manage.py project create vision
    manage.py project grant vision alice maintainer
    manage.py project grant vision group:students viewer
    manage.py project revoke vision alice
    manage.py project list

Roles: viewer, editor, maintainer (README, "Security model"). Every change is audited.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments import membership
from experiments.models import Role


class Command(BaseCommand):
    help = "Create projects and grant or revoke roles in them (USER_OR_GROUP: a user name, or group:NAME)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="create|grant|revoke|list")
        create = actions.add_parser("create", help="make a project (its runs go under <root>/projects/NAME/)")
        create.add_argument("name")
        grant = actions.add_parser("grant", help="give a user or a group a role in a project (replacing theirs)")
        grant.add_argument("name")
        grant.add_argument("holder", metavar="USER_OR_GROUP")
        grant.add_argument("role", choices=Role.values)
        revoke = actions.add_parser("revoke", help="take a user's or a group's role in a project away")
        revoke.add_argument("name")
        revoke.add_argument("holder", metavar="USER_OR_GROUP")
        actions.add_parser("list", help="every project and its members")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.stdout.write(self._act(options))
        except membership.MembershipError as exc:
            raise CommandError(str(exc)) from None

    def _act(self, options: dict[str, Any]) -> str:
        action = options["action"]
        if action == "create":
            project = membership.create_project(options["name"])
            return f"Created project {project.name}; grant roles with: manage.py project grant {project.name} USER ROLE"
        if action == "list":
            lines = [f"{name}: {', '.join(members) or 'no members'}" for name, members in membership.listing()]
            return "\n".join(lines)
        project = membership.find_project(options["name"])
        holder = membership.find_holder(options["holder"])
        if action == "grant":
            before = membership.grant(project, holder, options["role"])
            was = f" (was {before})" if before else ""
            return f"{holder} is now {options['role']} of {project.name}{was}"
        role = membership.revoke(project, holder)
        return f"{holder} is no longer {role} of {project.name}"
