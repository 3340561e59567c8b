"""``/api/projects``: the projects the caller may see, with their role in each."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from experiments.access import projects_of
from experiments.api.base import Detail

router = Router(tags=["projects"])


class ProjectOut(Schema):
    name: str
    role: str = Field(description="viewer, editor or maintainer (README, Security model).")


@router.get("", response={200: list[ProjectOut], 401: Detail}, summary="The caller's projects and roles")
def list_projects(request: HttpRequest) -> list[dict[str, Any]]:
    """Every project the caller may see (a token limited to one project: that one) with their role in it;
    in ``default`` without an explicit role, the role their global permissions amount to."""
    return projects_of(request.user)
