"""The Content-Security-Policy header: on every answer, strict for scripts, with eval nowhere (not even where
parallel coordinates draw with WebGL: those pages load Plotly's strict bundle).

The browser tests (tests/test_browser_hostile.py) show that no page breaks the policy and that hostile
names run nothing; these say which policy each kind of page is sent.
"""

import pytest
from django.test import Client

from experiments.models import ShareLink
from tests.folders import permalink

pytestmark = pytest.mark.django_db


def directives(response):
    """The policy as ``{directive: [sources]}``."""
    policy = response["Content-Security-Policy"]
    return {name: sources for name, *sources in (part.split() for part in policy.split(";") if part.strip())}


STRICT = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


@pytest.fixture
def staff_client(django_user_model):
    user = django_user_model.objects.create_superuser("root", password="pw-root-123")
    client = Client()
    client.force_login(user)
    return client


def test_the_pages_a_person_reads_get_the_strict_policy(owner_client, trained):
    for url in (
        "/",
        permalink(trained),
        f"/compare/?runs={trained.pk}",
        "/queue/",
        "/trash/",
        "/runs/new/",
        "/alerts/",
    ):
        response = owner_client.get(url)
        assert response.status_code == 200, url
        assert directives(response) == STRICT, url


def test_the_login_page_a_share_link_the_api_and_a_download_get_it_too(owner, trained):
    link = ShareLink.objects.create(kind=ShareLink.Kind.EXECUTION, execution=trained, created_by=owner)
    visitor = Client()
    for url in ("/accounts/login/", f"/s/{link.token}/", f"/s/{link.token}/data.json", "/api/openapi.json"):
        response = visitor.get(url)
        assert response.status_code == 200, url
        assert directives(response) == STRICT, url


def test_the_admin_and_django_rq_work_under_the_strict_policy(staff_client, real_queues):
    for url in ("/admin/", "/admin/experiments/execution/", "/admin/rq/"):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert directives(response) == STRICT, url


def test_the_pages_drawing_parallel_coordinates_get_the_strict_policy_too(owner_client, trained):
    from sweeps.models import Sweep

    sweep = Sweep.objects.create(
        name="width", method="random", trials_total=1, parallel=1, document={"parameters": {}}, base_config={},
        metric="val_loss", which="best", direction="minimize", study_name="s", seed=0, queue="default",
    )  # fmt: skip
    link = ShareLink.objects.create(kind=ShareLink.Kind.EXECUTION, execution=trained, created_by=trained.launched_by)
    for url in (f"/experiments/{trained.experiment.name}/", f"/sweeps/{sweep.pk}/", f"/s/{link.token}/"):
        response = owner_client.get(url)
        assert response.status_code == 200, url
        assert directives(response) == STRICT, url
        assert "plotly.min" not in response.content.decode(), url  # a bundle of Plotly's, not the 4.8 MB one


def test_no_page_allows_eval(owner_client, staff_client, trained, real_queues):
    """Every page's policy, whoever asks: 'unsafe-eval' is in none of them."""
    urls = [
        "/", f"/experiments/{trained.experiment.name}/", permalink(trained), f"/compare/?runs={trained.pk}",
        "/queue/", "/trash/", "/runs/new/", "/sweeps/", "/sweeps/new/", "/accounts/login/", "/api/docs",
    ]  # fmt: skip
    for client, url in [*((owner_client, url) for url in urls), (staff_client, "/admin/"), (Client(), "/nowhere/")]:
        response = client.get(url)
        assert "'unsafe-eval'" not in response["Content-Security-Policy"], url


def test_scripts_cannot_read_the_csrf_cookie(owner_client):
    response = owner_client.get("/runs/new/")
    assert response.cookies["csrftoken"]["httponly"] is True
