"""Static files as a browser gets them: Plotly's bundle a page needs, by a hashed name, gzipped, cached for
good; collected again only when the files changed; /favicon.ico."""

import gzip
import json
import re

import pytest
from django.test import Client

from experiments import staticfiles
from experiments.models import Execution
from tests.folders import make_run, permalink
from tests.helpers import ROOT, seed_config

pytestmark = pytest.mark.django_db

YEAR = 365 * 24 * 3600


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def scripts(page):
    return re.findall(r'<script (?:defer )?src="([^"]+)"', page)


def plotly_of(page):
    return [src.split("/")[-1].split(".")[0] for src in scripts(page) if "plotly" in src]


def test_a_runs_page_loads_plotlys_basic_bundle_gzipped_and_cached_for_good(owner_client, trained):
    page = owner_client.get(permalink(trained)).content.decode()
    plotly = [src for src in scripts(page) if "plotly" in src]
    hashed = r"/static/vendor/plotly/plotly-gymnos-basic\.min\.[0-9a-f]{12}\.js"
    assert len(plotly) == 1
    assert re.fullmatch(hashed, plotly[0])
    # Asked for from the head, with the stylesheet, by the very URL the script runs (one download, not two).
    assert re.findall(r'<link rel="preload" as="script" href="([^"]+)"', page) == plotly
    response = Client().get(plotly[0], HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "immutable" in response["Cache-Control"]
    assert f"max-age={10 * YEAR}" in response["Cache-Control"]
    sent = body(response)
    original = (ROOT / "static" / "vendor" / "plotly" / "plotly-gymnos-basic.min.js").read_bytes()
    assert gzip.decompress(sent) == original
    assert len(sent) < 380_000  # 0.36 MB of 1.0 (Plotly's own basic bundle: 0.40 MB of 1.2)


def test_a_classifiers_page_and_its_comparison_load_the_bundle_that_draws_its_confusion_matrix(
    owner_client, root, owner, trained
):
    config = seed_config()
    config["model"]["compilation"]["loss"] = "sparse_categorical_crossentropy"
    classifier = make_run(root, "07-00-00__08-04-2019", config=config, owner=owner)
    assert plotly_of(owner_client.get(permalink(classifier)).content.decode()) == ["plotly-gymnos-cartesian"]
    compared = owner_client.get(f"/compare/?runs={trained.pk},{classifier.pk}").content.decode()
    assert plotly_of(compared) == ["plotly-gymnos-cartesian"]
    Execution.objects.filter(pk=classifier.pk).update(evaluation={"r2": 0.8, "rmse": 3.1})  # it said: a regressor
    assert plotly_of(owner_client.get(permalink(classifier)).content.decode()) == ["plotly-gymnos-basic"]


def test_every_script_and_stylesheet_of_a_page_is_hashed_and_cached_for_good(owner_client, trained):
    page = owner_client.get(permalink(trained)).content.decode()
    assets = scripts(page) + re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert len(assets) >= 6
    for url in assets:
        response = Client().get(url)
        assert response.status_code == 200, url
        assert "immutable" in response["Cache-Control"], url


def test_the_pages_drawing_parallel_coordinates_load_the_strict_bundle_alone(owner_client, trained):
    page = owner_client.get(f"/experiments/{trained.experiment.name}/").content.decode()
    assert plotly_of(page) == ["plotly-strict"]


@pytest.mark.parametrize("bundle", ["basic", "cartesian"])
def test_the_bundles_gymnos_builds_say_what_they_are_compile_as_they_stream_and_run_no_eval(bundle):
    """scripts/build-plotly's output as committed: the compile hint first (V8 reads it only there), then the banner
    naming the plotly.js version and the entry point it was built from; nothing the Content-Security-Policy forbids."""
    text = (ROOT / "static" / "vendor" / "plotly" / f"plotly-gymnos-{bundle}.min.js").read_text()
    lines = text.splitlines()
    assert lines[0] == "//# allFunctionsCalledOnLoad"
    version = json.loads((ROOT / "tools" / "plotly" / "package.json").read_text())["dependencies"]["plotly.js"]
    assert lines[1].startswith(f"/*! plotly.js {version} ")
    assert f"tools/plotly/{bundle}.js built with esbuild" in lines[2]
    assert re.search(r"\bnew Function\b|[^.\w]eval\(|\bFunction\(\s*['\"]", text) is None
    assert "Bundled license information" in text  # the bundled packages' notices are kept


def test_the_favicon_is_there(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert body(response)[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_collect_runs_collectstatic_only_when_the_files_changed(tmp_path, settings):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "one.js").write_text("var one = 1;\n" * 100)
    settings.STATICFILES_DIRS = [extra]
    settings.STATIC_ROOT = tmp_path / "collected"
    assert staticfiles.collect() is True
    hashed = list((tmp_path / "collected").glob("one.*.js"))
    assert len(hashed) == 1
    assert hashed[0].with_name(hashed[0].name + ".gz").exists()
    assert not (tmp_path / "collected" / "one.js").exists()  # only the hashed name is served
    assert staticfiles.collect() is False  # nothing changed: nothing done
    (extra / "one.js").write_text("var one = 2;\n" * 100)
    assert staticfiles.collect() is True
    assert [path.name for path in (tmp_path / "collected").glob("one.*.js")] != [hashed[0].name]
