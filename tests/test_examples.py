"""The configs in examples/ are ones a new user can run as they are: each validates and builds."""

import pytest

from experiments.pipeline import load_config_file
from experiments.pipeline.build_check import build_problems
from tests.helpers import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_example_validates_and_builds(path):
    assert build_problems(load_config_file(path)) == []


def test_the_readmes_first_example_trains_long_enough_to_watch_and_needs_no_download():
    """README's first command queues it: a minute or two of epochs on a dataset that ships with a package."""
    config = load_config_file(ROOT / "examples" / "digits_cnn.json")
    assert config.dataset.name in {"boston_housing", "iris", "wine", "diabetes", "breast_cancer", "digits"}
    assert config.training.epochs >= 60
    assert config.training.samples.val > 0
    assert "up --enqueue examples/digits_cnn.json" in (ROOT / "README.md").read_text()
