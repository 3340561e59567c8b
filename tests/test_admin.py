"""The admin shows a synced tree: lists, filters, search by name and tag, read-only config and metrics."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from experiments.index.sync import sync_trainings
from experiments.models import Execution, MetricHistory
from tests.folders import write_execution
from tests.helpers import seed_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, trainings):
    trainings.mkdir()
    tagged = seed_config()
    tagged["experiment"]["tags"] = ["baseline-2019"]
    write_execution(trainings, name="06-16-31__08-04-2019", config=tagged)
    write_execution(trainings, name="06-39-51__10-04-2019", metrics=b"{truncated")
    write_execution(trainings, name="07-00-00__11-04-2019", dataset="iris")
    sync_trainings(trainings)
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def test_the_execution_list_shows_every_synced_folder(admin_client):
    page = admin_client.get(reverse("admin:experiments_execution_changelist")).content.decode()
    for name in (
        "boston_housing/06-16-31__08-04-2019",
        "boston_housing/06-39-51__10-04-2019",
        "iris/07-00-00__11-04-2019",
    ):
        assert name in page
    assert "3 executions" in page


def test_the_list_shows_losses_to_four_significant_digits_as_the_pages_do(admin_client):
    Execution.objects.filter(folder_name="06-16-31__08-04-2019").update(final_val_loss=30.89472198486328)
    page = admin_client.get(reverse("admin:experiments_execution_changelist")).content.decode()
    assert ">30.89<" in page
    assert "30.894721" not in page
    ordered = admin_client.get(reverse("admin:experiments_execution_changelist"), {"o": "5"})
    assert ordered.status_code == 200  # the column still sorts, by the full value


def test_it_filters_by_status_and_experiment(admin_client):
    url = reverse("admin:experiments_execution_changelist")
    page = admin_client.get(url, {"status__exact": "failed"}).content.decode()
    assert "06-39-51__10-04-2019" in page
    assert "06-16-31__08-04-2019" not in page
    iris = Execution.objects.get(folder_name="07-00-00__11-04-2019").experiment_id
    page = admin_client.get(url, {"experiment__id__exact": iris}).content.decode()
    assert "07-00-00__11-04-2019" in page
    assert "06-16-31__08-04-2019" not in page


@pytest.mark.parametrize(
    "query, expected",
    [("baseline-2019", "06-16-31__08-04-2019"), ("iris", "07-00-00__11-04-2019"), ("06-39", "06-39-51__10-04-2019")],
)
def test_it_searches_by_tag_and_name(admin_client, query, expected):
    page = admin_client.get(reverse("admin:experiments_execution_changelist"), {"q": query}).content.decode()
    assert "1 execution" in page
    assert expected in page


def test_the_change_page_shows_config_and_metrics_read_only(admin_client):
    execution = Execution.objects.get(folder_name="06-16-31__08-04-2019")
    page = admin_client.get(reverse("admin:experiments_execution_change", args=[execution.pk])).content.decode()
    assert "standard_scaler" in page
    assert "baseline-2019" in page
    assert 'name="config' not in page
    assert 'name="summary' not in page
    assert 'name="status"' not in page  # a status moves only through its transitions
    assert "15.7484" in page  # the val_loss history, inline


def test_a_stuck_run_is_marked_failed_by_an_action_and_an_ended_one_is_left_alone(admin_client):
    stuck = Execution.objects.get(folder_name="06-16-31__08-04-2019")
    ended = Execution.objects.get(folder_name="06-39-51__10-04-2019")
    Execution.objects.filter(pk=stuck.pk).update(status="running")
    response = admin_client.post(
        reverse("admin:experiments_execution_changelist"),
        {"action": "mark_failed", "_selected_action": [stuck.pk, ended.pk]},
        follow=True,
    )
    assert "Marked 1 execution failed; 1 had already ended." in response.content.decode()
    stuck.refresh_from_db()
    assert stuck.status == "failed"
    assert stuck.error.startswith("marked failed in the admin by")
    assert Execution.objects.get(pk=ended.pk).status == ended.status


def test_the_error_is_shown_on_a_failed_execution(admin_client):
    execution = Execution.objects.get(folder_name="06-39-51__10-04-2019")
    page = admin_client.get(reverse("admin:experiments_execution_change", args=[execution.pk])).content.decode()
    assert "metrics.json: is not valid JSON" in page


def test_experiments_and_histories_have_admin_pages(admin_client):
    page = admin_client.get(reverse("admin:experiments_experiment_changelist")).content.decode()
    assert "boston_housing" in page
    assert "iris" in page
    history = MetricHistory.objects.filter(name="val_loss").first()
    assert history is not None
    page = admin_client.get(reverse("admin:experiments_metrichistory_change", args=[history.pk])).content.decode()
    assert "466.78" in page
    assert 'name="values"' not in page
