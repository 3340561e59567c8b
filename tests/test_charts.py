"""Server-side downsampling keeps a chart's shape and extremes in at most ~2,000 points."""

from experiments.charts import checkpoint_epoch, checkpoints, downsample, execution_charts, trace


def test_short_histories_are_kept_as_they_are():
    assert downsample([3.0, None, 1.0]) == ([1, 2, 3], [3.0, None, 1.0])


def test_long_histories_keep_each_buckets_min_and_max_in_epoch_order():
    values = [float(i % 100) for i in range(100_000)]
    values[77_777] = 1e6
    values[12_345] = -1e6
    xs, ys = downsample(values)
    assert len(xs) <= 2000
    assert xs == sorted(xs)
    assert max(y for y in ys if y is not None) == 1e6
    assert xs[ys.index(1e6)] == 77_778
    assert min(y for y in ys if y is not None) == -1e6
    assert xs[ys.index(-1e6)] == 12_346
    assert xs[0] == 1
    assert xs[-1] > 99_900


def test_a_bucket_of_nans_is_a_gap():
    xs, ys = downsample([None] * 10 + [1.0] * 10, max_points=4)
    assert ys[0] is None
    assert 1.0 in ys


def test_train_and_val_share_a_chart_and_test_metrics_have_none():
    histories = {"val_loss": [2.0], "loss": [1.0], "test_loss": [3.0], "accuracy": [0.5]}
    charts = execution_charts({name: trace(values) for name, values in histories.items()})
    assert list(charts) == ["loss", "accuracy"]
    assert set(charts["loss"]) == {"train", "val"}
    assert set(charts["accuracy"]) == {"train"}


def test_checkpoint_epochs_come_from_their_file_names():
    assert checkpoint_epoch("callbacks/model_checkpoint/weights.05-27.07.h5") == 5
    assert checkpoint_epoch("callbacks/model_checkpoint/best.h5") is None
    found = checkpoints(
        [
            {"path": "model.h5", "bytes": 1},
            {"path": "callbacks/model_checkpoint/weights.10-17.55.h5", "bytes": 2},
            {"path": "callbacks/csv_logger/training.log", "bytes": 3},
        ]
    )
    assert found == [{"path": "callbacks/model_checkpoint/weights.10-17.55.h5", "bytes": 2, "epoch": 10}]
