"""Shared fixtures: throwaway trainings and cache folders, and a tiny config."""
import pytest

from tests.helpers import tiny


@pytest.fixture
def trainings(tmp_path):
    return tmp_path / "trainings"


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def tiny_config():
    return tiny()
