"""The admin's lists for staff who are not superusers (issue #26): only the objects of their projects.

A staff viewer of vision sees vision's runs (and default's), their metrics, alert rules, deliveries and audit
entries; nlp's are missing from every list and their change pages answer as for something that is not there.
A superuser sees both."""

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.urls import reverse

from alerts.models import Delivery, Rule
from audit.models import Entry
from audit.recording import record
from experiments.models import Experiment, Project
from tests.folders import login, make_run

pytestmark = pytest.mark.django_db

VISION_RUN, NLP_RUN = "06-16-31__08-04-2019", "07-00-00__09-04-2019"


@pytest.fixture
def world(root):
    vision, nlp = Project.objects.create(name="vision"), Project.objects.create(name="nlp")
    seen = make_run(root, VISION_RUN, dataset="iris")
    hidden = make_run(root, NLP_RUN, dataset="boston_housing")
    Experiment.objects.filter(pk=seen.experiment_id).update(project=vision)
    Experiment.objects.filter(pk=hidden.experiment_id).update(project=nlp)
    staff = User.objects.create_user("sam", password="pw-sam-123", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    call_command("project", "grant", "vision", "sam", "viewer")
    owner = User.objects.create_user("olga")
    for run in (seen, hidden):
        rule = Rule.objects.create(owner=owner, scope="run", execution=run, kind="failed", channel="in_app")
        Delivery.objects.create(rule=rule, execution=run, event="failed", key=f"{rule.pk}:{run.pk}:failed",
                                message=f"{run.folder_name} failed")  # fmt: skip
        record(None, Entry.Action.CANCEL, execution=run, actor=owner)
    call_command("project", "grant", "nlp", "olga", "editor")
    return {"seen": seen, "hidden": hidden, "staff": staff}


def listed(client, model, **query):
    """The changelist page's HTML, less its random tokens (a CSRF token once held "nlp")."""
    response = client.get(reverse(f"admin:{model}_changelist"), query)
    assert response.status_code == 200
    return re.sub(r'(value|nonce)="[A-Za-z0-9+/=_-]{20,}"', "", response.content.decode())


@pytest.mark.parametrize(
    "model", ["experiments_execution", "experiments_metrichistory", "alerts_delivery", "audit_entry"]
)
def test_a_staff_viewer_of_vision_lists_vision_s_objects_only(world, model):
    page = listed(login(world["staff"]), model)
    assert VISION_RUN in page
    assert NLP_RUN not in page
    assert "boston_housing" not in page  # nor the experiment's name, in a row or a filter


def test_the_experiments_and_projects_lists_are_scoped_too(world):
    client = login(world["staff"])
    experiments = listed(client, "experiments_experiment")
    assert "iris" in experiments
    assert "boston_housing" not in experiments
    projects = listed(client, "experiments_project")
    assert "vision" in projects
    assert "nlp" not in projects
    assert Rule.objects.count() == 2
    assert "1 rule" in listed(client, "alerts_rule")  # the rule watching nlp's run is not counted


def test_an_other_project_s_run_is_not_there_for_them(world):
    client = login(world["staff"])
    seen = client.get(reverse("admin:experiments_execution_change", args=[world["seen"].pk]))
    assert seen.status_code == 200
    assert VISION_RUN in seen.content.decode()
    hidden = client.get(reverse("admin:experiments_execution_change", args=[world["hidden"].pk]), follow=True)
    assert NLP_RUN not in hidden.content.decode()
    assert "doesn’t exist" in hidden.content.decode()  # the admin's answer for a missing object


def test_nlp_s_role_change_is_in_the_log_for_a_superuser_only(world):
    grant = "olga in project nlp"
    assert grant not in listed(login(world["staff"]), "audit_entry")
    admin = User.objects.create_superuser("root", "root@example.com", "pw-root-123")
    page = listed(login(admin), "audit_entry")
    assert grant in page
    assert "sam in project vision" in page


def test_a_superuser_sees_every_project_s_runs(world):
    admin = User.objects.create_superuser("root", "root@example.com", "pw-root-123")
    page = listed(login(admin), "experiments_execution")
    assert VISION_RUN in page
    assert NLP_RUN in page


def test_roles_changed_in_the_admin_s_inline_are_audited_as_the_command_s_are(world):
    """A superuser adds a role, changes one and deletes one in the project's inline: three audit entries, the same
    actions and targets as ``manage.py project grant/revoke`` writes."""
    admin = User.objects.create_superuser("ada", password="pw-ada-123")
    vision = Project.objects.get(name="vision")
    sam_role = vision.roles.get(user=world["staff"])
    User.objects.create_user("bob")
    call_command("project", "grant", "vision", "olga", "viewer")
    olga_role = vision.roles.get(user__username="olga")
    before = Entry.objects.count()
    form = {
        "name": "vision",
        "roles-TOTAL_FORMS": "3", "roles-INITIAL_FORMS": "2", "roles-MIN_NUM_FORMS": "0", "roles-MAX_NUM_FORMS": "1000",
        "roles-0-id": str(sam_role.pk), "roles-0-project": str(vision.pk), "roles-0-user": str(sam_role.user_id),
        "roles-0-role": "editor",
        "roles-1-id": str(olga_role.pk), "roles-1-project": str(vision.pk), "roles-1-user": str(olga_role.user_id),
        "roles-1-role": "viewer", "roles-1-DELETE": "on",
        "roles-2-project": str(vision.pk), "roles-2-user": str(User.objects.get(username="bob").pk),
        "roles-2-role": "maintainer",
    }  # fmt: skip
    response = login(admin).post(reverse("admin:experiments_project_change", args=[vision.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert dict(vision.roles.values_list("user__username", "role")) == {"sam": "editor", "bob": "maintainer"}
    written = {(e.action, e.target) for e in Entry.objects.order_by("pk")[before:]}
    assert written == {
        ("role_grant", "sam in project vision"),
        ("role_revoke", "olga in project vision"),
        ("role_grant", "bob in project vision"),
    }
