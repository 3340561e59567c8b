"""The admin's lists for staff who are not superusers (issue #26): only the objects of their projects.

A staff viewer of vision sees vision's runs (and default's), their metrics, alert rules, deliveries and audit
entries; nlp's are missing from every list and their change pages answer as for something that is not there.
A superuser sees both."""

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
    response = client.get(reverse(f"admin:{model}_changelist"), query)
    assert response.status_code == 200
    return response.content.decode()


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
