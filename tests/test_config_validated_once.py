"""A config is validated once where it is launched: a sweep's base once for the whole launch, and a run trained by
the process that queued it (a sweep's next trial in the horse that queued it) not a second time."""

import copy

import pytest

from experiments.jobs import horse, launching
from experiments.models import Execution
from experiments.pipeline import config as config_module
from sweeps.launching import launch_sweep
from tests.helpers import tiny


@pytest.fixture
def validated(monkeypatch):
    """Every whole config the schema validates from now on (the real validation still runs); a section read on
    its own (``config.experiment_section``, the index's title and tags) is not a config's validation."""
    seen = []
    real = config_module.validate

    def counting(model, data, *args, **kwargs):
        if model is config_module.TrainingConfig:
            seen.append(copy.deepcopy(data))
        return real(model, data, *args, **kwargs)

    monkeypatch.setattr(config_module, "validate", counting)
    return seen


@pytest.mark.django_db
def test_a_sweep_launch_validates_its_base_once_and_each_end_of_a_range_once(validated, real_queues):
    base = tiny()
    launch_sweep({"base": base, "parameters": {"training.epochs": {"choice": [3, 4]}}, "method": "grid"})
    ends = [copy.deepcopy(base) for _ in range(2)]
    ends[0]["training"]["epochs"], ends[1]["training"]["epochs"] = 3, 4
    assert validated.count(base) == 1  # twice before: once more to choose the sweep's queue
    assert validated == [base, *ends]


@pytest.mark.django_db(transaction=True)
@pytest.mark.training
def test_a_run_trained_by_the_process_that_queued_it_is_not_validated_again(validated, real_queues, settings, tmp_path):
    settings.GYMNOS_TRAININGS_ROOT = tmp_path / "trainings"
    settings.GYMNOS_CACHE_DIR = tmp_path / "cache"
    config = tiny(epochs=1)
    execution = launching.launch(config, trusted=True, check=lambda checked: [])
    assert horse.run(execution.pk) == "succeeded"
    # Once as it was queued, once more as the index reads the folder's training_config.json back (the folder
    # is the record of truth); the horse validated it a third time before.
    assert validated == [config, config]
    assert Execution.objects.get(pk=execution.pk).status == "succeeded"


@pytest.mark.django_db
def test_a_config_changed_since_it_was_queued_is_validated_again(validated, real_queues):
    execution = launching.launch(tiny(), trusted=True, check=lambda checked: [])
    changed = tiny()
    changed["experiment"]["name"] = "renamed"
    Execution.objects.filter(pk=execution.pk).update(config=changed)
    assert launching.validated_config(Execution.objects.get(pk=execution.pk)).experiment.name == "renamed"
    assert validated == [tiny(), changed]
