"""The Content-Security-Policy header: on every answer, strict for scripts, with eval only where WebGL draws.

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
    for url in ("/", permalink(trained), f"/compare/?runs={trained.pk}", "/queue/", "/trash/", "/runs/new/"):
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


def test_only_the_pages_drawing_parallel_coordinates_allow_eval_and_still_no_inline_script(owner_client, trained):
    from sweeps.models import Sweep

    sweep = Sweep.objects.create(
        name="width", method="random", trials_total=1, parallel=1, document={"parameters": {}}, base_config={},
        metric="val_loss", which="best", direction="minimize", study_name="s", seed=0, queue="default",
    )  # fmt: skip
    for url in (f"/experiments/{trained.experiment.name}/", f"/sweeps/{sweep.pk}/"):
        response = owner_client.get(url)
        assert response.status_code == 200, url
        assert directives(response) == {**STRICT, "script-src": ["'self'", "'unsafe-eval'"]}, url


def test_scripts_cannot_read_the_csrf_cookie(owner_client):
    response = owner_client.get("/runs/new/")
    assert response.cookies["csrftoken"]["httponly"] is True
