"""The start-up tuning of experiments/pipeline/preload.py: collector paused, then frozen, never left off."""

import gc

import pytest

from experiments.pipeline.preload import import_frameworks, paused_collector


@pytest.fixture
def restore_gc():
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    gc.enable() if enabled else gc.disable()


def test_paused_collector_freezes_what_the_block_built_and_turns_the_collector_back_on(restore_gc):
    gc.enable()
    before = gc.get_freeze_count()
    with paused_collector():
        assert not gc.isenabled()
        built = [{"layer": i} for i in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= before + len(built)


def test_paused_collector_keeps_a_disabled_collector_disabled_and_survives_errors(restore_gc):
    gc.disable()
    with pytest.raises(RuntimeError):
        with paused_collector():
            raise RuntimeError("import failed")
    assert not gc.isenabled()
    gc.enable()
    with pytest.raises(RuntimeError):
        with paused_collector():
            raise RuntimeError("import failed")
    assert gc.isenabled()


def test_import_frameworks_freezes_nothing_once_keras_is_loaded(restore_gc):
    import keras  # noqa: F401 - a long-lived process that already trained

    before = gc.get_freeze_count()
    import_frameworks()
    assert gc.get_freeze_count() == before
    assert gc.isenabled()
