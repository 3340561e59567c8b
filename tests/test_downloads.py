"""Downloads: every file of the folder, the folder as a streamed zip, and nothing outside it."""

import io
import os
import zipfile

import pytest
from django.http import StreamingHttpResponse

from tests.folders import permalink

pytestmark = pytest.mark.django_db


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize(
    "name",
    [
        "model.h5",
        "training_config.json",
        "metrics.json",
        "execution.log",
        "callbacks/model_checkpoint/weights.10-17.55.h5",
    ],
)
def test_each_file_downloads_with_its_name(teammate_client, trained, name):
    response = teammate_client.get(permalink(trained) + "files/" + name)
    assert response.status_code == 200
    assert body(response) == (trained_folder(trained) / name).read_bytes()
    assert response["Content-Disposition"] == f'attachment; filename="{os.path.basename(name)}"'


def trained_folder(execution):
    from pathlib import Path

    return Path(execution.folder_path)


def test_the_whole_folder_streams_as_a_zip(teammate_client, trained):
    response = teammate_client.get(permalink(trained) + "download.zip")
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="boston_housing-06-16-31__08-04-2019.zip"'
    archive = zipfile.ZipFile(io.BytesIO(body(response)))
    prefix = "06-16-31__08-04-2019/"
    assert sorted(archive.namelist()) == sorted(
        prefix + name
        for name in [
            "callbacks/model_checkpoint/weights.05-27.07.h5",
            "callbacks/model_checkpoint/weights.10-17.55.h5",
            "callbacks/model_checkpoint/weights.15-16.03.h5",
            "execution.log",
            "metrics.json",
            "model.h5",
            "training_config.json",
        ]
    )
    assert archive.read(prefix + "model.h5") == b"\x89HDF fake model"


def test_the_zip_leaves_out_links_that_lead_outside(teammate_client, trained, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not leak")
    os.symlink(secret, trained_folder(trained) / "leak.txt")
    os.symlink(tmp_path, trained_folder(trained) / "leakdir")
    names = zipfile.ZipFile(io.BytesIO(body(teammate_client.get(permalink(trained) + "download.zip")))).namelist()
    assert not any("leak" in name for name in names)
    assert len(names) == 7


def test_an_outsider_downloads_nothing(outsider, trained):
    for url in (permalink(trained) + "files/model.h5", permalink(trained) + "download.zip"):
        response = outsider.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_posting_to_a_download_is_405(owner_client, trained):
    assert owner_client.post(permalink(trained) + "files/model.h5").status_code == 405
    assert owner_client.post(permalink(trained) + "download.zip").status_code == 405


@pytest.mark.parametrize(
    "attempt",
    [
        "../../../secret.txt",
        "callbacks/../../../../secret.txt",
        "%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "%2E%2E%2F%2E%2E%2F%2E%2E%2Fsecret.txt",
        "..%2f..%2f..%2fsecret.txt",
        "callbacks/%2e%2e/model.h5",
        "./model.h5",
        "callbacks//model_checkpoint/weights.05-27.07.h5",
        "..\\..\\..\\secret.txt",
        "callbacks",
        "no-such-file.h5",
    ],
)
def test_traversal_and_odd_paths_are_404(owner_client, trained, attempt):
    (trained_folder(trained).parents[2].parent / "secret.txt").write_text("do not leak")
    response = owner_client.get(permalink(trained) + "files/" + attempt)
    assert response.status_code == 404
    assert b"do not leak" not in body(response)


def test_an_absolute_path_is_404(owner_client, trained, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not leak")
    for attempt in (str(secret), "/" + str(secret), "%2F" + str(secret).lstrip("/").replace("/", "%2F")):
        response = owner_client.get(permalink(trained) + "files/" + attempt)
        assert response.status_code == 404, attempt


def test_a_symlink_leading_out_is_404_and_one_inside_works(owner_client, trained, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not leak")
    os.symlink(secret, trained_folder(trained) / "leak.txt")
    os.symlink(tmp_path, trained_folder(trained) / "callbacks" / "outside")
    os.symlink(trained_folder(trained) / "model.h5", trained_folder(trained) / "alias.h5")
    assert owner_client.get(permalink(trained) + "files/leak.txt").status_code == 404
    assert owner_client.get(permalink(trained) + "files/callbacks/outside/secret.txt").status_code == 404
    assert body(owner_client.get(permalink(trained) + "files/alias.h5")) == b"\x89HDF fake model"


def test_a_folder_recorded_outside_the_trainings_root_serves_nothing(owner_client, trained, tmp_path, settings):
    settings.GYMNOS_TRAININGS_ROOT = tmp_path / "elsewhere"
    assert owner_client.get(permalink(trained) + "files/model.h5").status_code == 404
    assert owner_client.get(permalink(trained) + "download.zip").status_code == 404


# --- the file name in the header comes from a folder: quoted by Django's helper --------------------


def renamed(execution, name):
    """The run's folder renamed on disk and in its row, as a row indexed before sync refused such names."""
    folder = trained_folder(execution)
    moved = folder.with_name(name)
    folder.rename(moved)
    type(execution).objects.filter(pk=execution.pk).update(folder_name=name, folder_path=str(moved))
    execution.refresh_from_db()
    return execution


def disposition(response):
    """The header's parameters as a browser reads them (``filename*``, percent-encoded, read as ``filename``)."""
    from django.utils.http import parse_header_parameters

    return parse_header_parameters(response["Content-Disposition"])


def test_a_quote_in_the_folder_name_cannot_add_a_second_file_name(teammate_client, trained):
    run = renamed(trained, 'run"; filename="evil.exe')
    response = teammate_client.get(permalink(run) + "download.zip")
    assert response.status_code == 200
    kind, params = disposition(response)
    assert kind == "attachment"
    assert params == {"filename": 'boston_housing-run"; filename="evil.exe.zip'}


def test_a_line_break_in_the_folder_name_downloads_instead_of_failing(teammate_client, trained):
    run = renamed(trained, "run\nSet-Cookie: x=1")
    response = teammate_client.get(permalink(run).replace("\n", "%0A") + "download.zip")
    assert response.status_code == 200
    assert "\n" not in response["Content-Disposition"]
    assert disposition(response) == ("attachment", {"filename": "boston_housing-run\nSet-Cookie: x=1.zip"})
    assert not response.has_header("Set-Cookie")
    assert len(zipfile.ZipFile(io.BytesIO(body(response))).namelist()) == 7
