"""Run one validated config end to end and write its execution folder (the seed's layout).

    result = run_experiment(config, trainings_root="trainings", cache_dir="cache")
    result.path       # trainings/boston_housing/executions/06-16-31__27-11-2026
    result.succeeded  # False if anything raised; the folder then still holds the log and config

Progress leaves the engine through the Keras callbacks the caller passes in ``callbacks``.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from . import datasets, fork, hardware, network, processing
from .config import TrainingConfig
from .errors import MemoryLimitExceeded, out_of_memory_in
from .evaluation import report as evaluation
from .execution import STAGES, ExecutionLog, create_execution_dir, write_json
from .fork import Start
from .resume import STATE_FOLDER, Kept, Resume, has_kept_state, kept_states
from .system_metrics import SystemSampler
from .system_metrics import interval_from_environment as system_interval
from .trackers import RunInfo, TrackerSet

if TYPE_CHECKING:
    from types import TracebackType

    import keras
    import numpy as np

    from .kept_state import KeptState
    from .steps import StepWriter


main_log = logging.getLogger("gymnosd.Main")
model_log = logging.getLogger("gymnosd.Model")
log = logging.getLogger("gymnosd.Trainer")


@dataclass
class ExecutionResult:
    path: Path | None
    succeeded: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class _Timer:
    def __init__(self, elapsed: dict[str, float], stage: str) -> None:
        self.elapsed, self.stage = elapsed, stage

    def __enter__(self) -> _Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        self.elapsed[self.stage] = time.perf_counter() - self.start
        return False


def _shown_path(path: str | Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class Trainer:
    """One run of one config. ``run()`` never raises for a training failure: it reports it."""

    def __init__(
        self,
        config: TrainingConfig,
        trainings_root: str | Path,
        cache_dir: str | Path,
        callbacks: Iterable[Any] = (),
        console_stream: IO[str] | None = None,
        progress_stream: IO[str] | None = None,
        claim_folder: Callable[[Path], bool] | None = None,
        memory_limit_mb: int | None = None,
        resume: Resume | None = None,
        start: Start | None = None,
        on_system_sample: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.on_system_sample = on_system_sample  # the worker publishes each sample as a live event
        self.resume = resume  # train again in the run's own folder, from the state it keeps
        self.start = start  # a fork: train from weights its parent saved
        self.memory_limit_mb = memory_limit_mb  # the cap this process runs under, said when it is hit
        self.claim_folder = claim_folder
        self.trainings_root = Path(trainings_root)
        self.cache_dir = Path(cache_dir)
        self.extra_callbacks = list(callbacks)
        self.console_stream = console_stream
        self.progress_stream = progress_stream
        self.elapsed = {stage: 0.0 for stage in STAGES}
        self.metrics: dict[str, list[float]] = {}
        self.path: Path | None = None
        self.sampler: SystemSampler | None = None
        self.step_writer: StepWriter | None = None
        self.dataset: datasets.Dataset | None = None  # the built-in dataset, once loaded (None for a file)
        self.split: processing.Split | None = None  # each split's dataset row numbers (the report names rows)

    # The steps, in the order (and with the log lines) of the seed's execution.log. ------------

    def run(self) -> ExecutionResult:
        with ExecutionLog(self.console_stream) as execution_log:
            self.trackers = TrackerSet.for_specs(self.config.tracking.trackers)
            try:
                self._run(execution_log)
            except BaseException as exc:  # noqa: BLE001 - every end is written down; _failed re-raises interruptions
                return self._failed(exc, execution_log)
            finally:
                if self.sampler is not None:
                    self.sampler.stop()
                self._close_steps()
            return ExecutionResult(self.path, True, self._metrics_document())

    def _system_sample(self, sample: dict[str, Any]) -> None:
        self.trackers.log_system(sample)
        if self.on_system_sample is not None:
            self.on_system_sample(sample)

    def _run(self, execution_log: ExecutionLog) -> None:
        import keras

        config = self.config
        main_log.info("Starting gymnos environment ...")
        keras.utils.set_random_seed(config.training.seed)
        model_log.info("Building Keras model from network specification")
        model = network.build_model(config.model.input_shape, config.model.network)
        model_log.info("Compiling Keras model")
        self._compile(model)

        path = self._create_folder()
        log.info(f"Running experiment: {path.name} ...")
        log.info(f"Creating directory to save training results ({_shown_path(path)})")
        execution_log.attach(path)
        # Written first, so even a run that fails at once leaves its config behind.
        write_json(path / "training_config.json", config.source)
        self.trackers.start(
            RunInfo(
                path,
                config.experiment.name,
                self.trainings_root,
                config.source,
                config.params,
                config.experiment.tags,
                resumed=self.resume is not None,
            )
        )

        interval = system_interval()
        if interval > 0:
            self.sampler = SystemSampler(path, interval, on_sample=self._system_sample)
            self.sampler.start()

        X, y = self._load_data()
        samples = config.training.samples
        assert samples.fit is not None  # the schema fills it in
        log.info(f"Splitting dataset -> Fit: {samples.fit:g} | Test: {samples.test:g} | Val: {samples.val:g} ...")
        self.split = split = processing.split_indices(
            len(X), samples.fit, samples.val, samples.test, config.training.shuffle, config.training.seed
        )

        preprocessors = config.dataset.preprocessors
        log.info(f"Applying {len(preprocessors)} preprocessors ...")
        with _Timer(self.elapsed, "transform_preprocessors"):
            for preprocessor in preprocessors:
                X = preprocessor(X)
        log.debug(f"Preprocessing took {self.elapsed['transform_preprocessors']:.2f}s")

        parts = {
            name: (X[index], y[index]) for name, index in (("fit", split.fit), ("val", split.val), ("test", split.test))
        }
        # Kept: what the fit split taught the transformers is part of what the run made.
        self.transformers = transformers = processing.TransformerChain(
            spec.make() for spec in config.dataset.transformers
        )
        log.info(f"Applying {len(transformers.transformers)} transformers ...")
        with _Timer(self.elapsed, "fit_transformers"):
            transformers.fit(parts["fit"][0])
        log.debug(f"Fitting transformers to train dataset took {self.elapsed['fit_transformers']:.2f}s")
        with _Timer(self.elapsed, "transform_transformers"):
            if transformers.transformers:
                parts = {name: (transformers.transform(features), labels) for name, (features, labels) in parts.items()}
        log.debug(f"Transforming datasets took {self.elapsed['transform_transformers']:.2f}s")
        self._check_shape(parts["fit"][0], model)
        self._start_from_parent(model)

        history = self._fit(model, parts)
        log.info("Logging train metrics")
        self.metrics.update(history)

        (X_test, y_test) = parts["test"]
        if len(X_test):
            log.info(f"Evaluating model with {len(X_test)} samples")
            with _Timer(self.elapsed, "evaluate_model"):
                results = model.evaluate(
                    X_test, y_test, batch_size=config.training.batch_size, verbose=0, return_dict=True
                )
            log.debug(f"Evaluating model took {self.elapsed['evaluate_model']:.2f}s")
            log.info("Logging test metrics")
            self.metrics.update({f"test_{key}": [float(value)] for key, value in results.items()})
            self.trackers.log_test({key: float(value) for key, value in results.items()}, len(history.get("loss", [])))

        log.info("Saving model")
        model.save(path / "model.h5")
        self._evaluation_report(model, parts, path)
        write_json(path / "metrics.json", self._metrics_document())
        self.trackers.log_artifacts([path / "model.h5", path / "training_config.json"])
        self.trackers.end("FINISHED")
        write_json(path / "trackers.json", self.trackers.summary())
        self._report_failed_trackers()
        log.info(f"Execution finished: {_shown_path(path)}")

    def _compile(self, model: keras.Model) -> None:
        compilation = self.config.model.compilation
        model.compile(
            optimizer=network.make_optimizer(compilation.optimizer),
            loss=network.loss_name(compilation.loss),
            metrics=[network.metric_name(metric) for metric in compilation.metrics],
        )

    def _start_from_parent(self, model: keras.Model) -> None:
        """A fork loads its parent's weights (copied into its folder first), unless it resumes from a state of its
        own (a fork whose worker died goes on from there, like any run)."""
        start = self.start
        assert self.path is not None  # _run made the folder first
        if start is None or (self.resume is not None and has_kept_state(self.path)):
            return
        copy = fork.copy_into(start, self.path)
        log.info(fork.started_line(start))
        fork.load(model, copy, start.optimizer)
        if not start.optimizer:
            self._compile(model)  # a fresh optimizer; the weights just loaded stay

    def _evaluation_report(self, model: keras.Model, parts: dict[str, Any], path: Path) -> None:
        """``evaluation.json``: its own stage in the log, and a failure there never fails a run that trained."""
        try:
            evaluation.write_report(model, parts, self.config, self.dataset, path, rows=self.split)
        except Exception as exc:  # noqa: BLE001 - the run trained; the report says what it could not do
            log.warning(f"Evaluation report failed: {type(exc).__name__}: {exc}; the run is kept as it trained")

    def _create_folder(self) -> Path:
        if self.resume is not None:
            if not self.resume.folder.is_dir():
                raise FileNotFoundError(f"the run's folder {self.resume.folder} is gone: it cannot be resumed")
            self.path = self.resume.folder
            return self.path
        self.path = create_execution_dir(self.trainings_root, self.config.dataset.folder_name, claim=self.claim_folder)
        return self.path

    def _load_data(self) -> tuple[np.ndarray, np.ndarray]:
        dataset = self.config.dataset
        log.info(f"Loading dataset: {dataset.name or dataset.path} ...")
        with _Timer(self.elapsed, "load_data"):
            if dataset.name is not None:
                self.dataset = datasets.get_dataset(dataset.name)
                X, y = self.dataset.load(self.cache_dir)
            else:
                assert dataset.path is not None  # the schema requires a name or a path
                X, y = datasets.load_file(dataset.path, dataset.target)
        log.debug(f"Loading data took {self.elapsed['load_data']:.2f}s")
        if len(X) != len(y):
            raise ValueError(f"the dataset has {len(X)} samples in X but {len(y)} in y")
        return X, y

    def _check_shape(self, X: np.ndarray, model: keras.Model) -> None:
        expected = tuple(self.config.model.input_shape)
        got = tuple(X.shape[1:])
        if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got, strict=False)):
            raise ValueError(
                f"model.input_shape is {list(expected)}, but the samples have shape {list(got)} after preprocessing; "
                "set model.input_shape to match, or add a reshape preprocessor"
            )

    def _fit(self, model: keras.Model, parts: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, list[float]]:
        import keras

        from .kept_state import KeptState
        from .keras_callbacks import EpochProgressBar, StepLogger, TrackerBridge
        from .steps import STEPS_FILE, StepWriter

        training = self.config.training
        X_fit, y_fit = parts["fit"]
        X_val, y_val = parts["val"]
        assert self.path is not None  # _run made the folder before fitting
        folder = self.path / "callbacks"
        built = [spec.build(folder / spec.type) for spec in training.callbacks]
        callbacks = [callback for callback in built if callback is not None]  # None: built into Keras 3 (history)
        # Keras' own History, after the config's callbacks so what they add to an epoch's logs (learning_rate)
        # is recorded too; fit() adds none of its own when given one. It keeps the epochs of a run that fails.
        self.history = keras.callbacks.History()
        attempt = self.resume.attempt if self.resume is not None else 1
        # After the History: the state kept at an epoch's end holds that epoch's logs; after the config's callbacks:
        # their state is put back after their own on_train_begin reset it.
        kept = KeptState(self.path, self.history, self._kept_states(), callbacks, training.resume_every, attempt)
        bridge = TrackerBridge(self.trackers, kept, resumed=self.resume is not None)
        callbacks += [self.history, kept, bridge]
        callbacks += self.extra_callbacks
        if training.log_every_steps:
            self.step_writer = StepWriter(self.path / STEPS_FILE, on_flush=self.trackers.log_steps)
            resumed = kept if self.resume is not None else None
            logger = StepLogger(self.step_writer, training.log_every_steps, resumed, self.trackers.resumed_steps)
            callbacks.append(logger)
        if self.sampler is not None:  # each epoch's end, marked on the system metrics' time axis
            callbacks.append(self.sampler.epoch_callback())
        if self.progress_stream is not None:
            callbacks.append(EpochProgressBar(training.epochs, self.progress_stream))
        log.info(f"Fitting model with {len(X_fit)} samples ...")
        with _Timer(self.elapsed, "fit_model"):
            try:
                model.fit(
                    X_fit,
                    y_fit,
                    batch_size=training.batch_size,
                    epochs=training.epochs,
                    validation_data=(X_val, y_val) if len(X_val) else None,
                    shuffle=training.shuffle,
                    callbacks=callbacks,
                    verbose=0,
                )
            except BaseException:
                # The state of the last epoch kept is written before the run fails, and its epochs given.
                if _flush_kept(kept):
                    bridge.on_failure()
                raise
        log.debug(f"Fitting model took {self.elapsed['fit_model']:.2f}s")
        return self._history()

    def _kept_states(self) -> list[Kept]:
        """A resumed run's kept states (``resume``), newest first (``KeptState`` loads the first that loads, and
        fills the History with the epochs it had trained); [] for a first run. When none can be read, the run fails
        (``StateError``, naming each file and why): never half-loaded."""
        if self.resume is None:
            return []
        assert self.path is not None  # the run's own folder
        kept = kept_states(self.path)
        if not kept:
            attempt = self.resume.attempt
            log.warning(f"No kept state in {STATE_FOLDER}/: training again from epoch 0 (attempt {attempt})")
        return kept

    def _history(self) -> dict[str, list[float]]:
        """Every epoch's logs so far, as lists of floats (what metrics.json keeps)."""
        history = getattr(self, "history", None)
        return {key: [float(value) for value in values] for key, values in (history.history if history else {}).items()}

    # Reporting ----------------------------------------------------------------------------------

    def _metrics_document(self) -> dict[str, Any]:
        return {"elapsed": dict(self.elapsed), "metrics": dict(self.metrics), "hardware": self._hardware()}

    def _hardware(self) -> dict[str, Any]:
        if not hasattr(self, "_hardware_info"):
            try:
                self._hardware_info = hardware.describe()
            except Exception as exc:  # noqa: BLE001 - a missing detail must not fail the run
                self._hardware_info = {"error": str(exc)}
        return self._hardware_info

    def _close_steps(self) -> None:
        """Write the step points still buffered, also when training raised (a kill loses the last flush only)."""
        if self.step_writer is None:
            return
        try:
            self.step_writer.close()
        except Exception as exc:  # noqa: BLE001 - the run's outcome is already decided; say what was lost
            log.warning(f"Step metrics could not be written at the end: {type(exc).__name__}: {exc}")

    def _report_failed_trackers(self) -> None:
        for name, error in self.trackers.failed.items():
            log.warning(f"Tracker {name} failed during this run and recorded only part of it: {error}")

    def _failed(self, exc: BaseException, execution_log: ExecutionLog) -> ExecutionResult:
        path = self.path
        if path is None:  # failed before the folder existed: make one, so the log is kept
            path = self._create_folder()
            execution_log.attach(path)
            write_json(path / "training_config.json", self.config.source)
        if not self.metrics:
            self.metrics.update(self._history())
        # Ctrl-C or an exit (even one raised while handling an error) is re-raised; the memory limit is a failure.
        interrupted = not isinstance(exc, (Exception, MemoryLimitExceeded))
        memory = None if interrupted else out_of_memory_in(exc)
        error = "interrupted" if interrupted else f"{type(exc).__name__}: {exc}"
        if memory is not None:
            # Said as the memory error itself, not as whatever wrapped it ("adam rejected its arguments").
            limit = f" (limit {self.memory_limit_mb} MB)" if self.memory_limit_mb else ""
            error = f"out of memory{limit}: {type(memory).__name__}: {memory}"
        log.error(f"Execution failed: {error}\n{''.join(traceback.format_exception(exc)).rstrip()}")
        document = {**self._metrics_document(), "error": error}
        write_json(path / "metrics.json", document)
        self._close_steps()  # the last step points buffered reach the trackers too, before they end
        self.trackers.end("KILLED" if interrupted else "FAILED")
        write_json(path / "trackers.json", self.trackers.summary())
        if interrupted:
            raise exc
        return ExecutionResult(path, False, document, error)


def _flush_kept(kept: KeptState) -> bool:
    """Wait for the kept state's write in flight on a failure (whether it was written); one that fails too is said,
    not raised over the run's own error."""
    try:
        kept.flush()
    except Exception as exc:  # noqa: BLE001 - the run's own error is the one to report
        log.warning(f"The state kept to resume from could not be written: {type(exc).__name__}: {exc}")
        return False
    return True


def run_experiment(
    config: TrainingConfig,
    trainings_root: str | Path = "trainings",
    cache_dir: str | Path = "cache",
    callbacks: Iterable[Any] = (),
    console_stream: IO[str] | None = None,
    progress_stream: IO[str] | None = None,
    claim_folder: Callable[[Path], bool] | None = None,
    memory_limit_mb: int | None = None,
    resume: Resume | None = None,
    start: Start | None = None,
    on_system_sample: Callable[[dict[str, Any]], None] | None = None,
) -> ExecutionResult:
    """Train ``config`` (a validated ``TrainingConfig``) and write its execution folder.

    ``callbacks`` are extra Keras callbacks (progress reporting). ``claim_folder(path)`` is asked
    before each candidate execution folder is created, and a False answer skips that name: a
    worker records the name first, so nobody else can index the folder as a run of its own. ``resume``: train
    again in that run's folder from the state it keeps (``resume``), as attempt ``resume.attempt``. ``start``: a
    fork, trained from weights its parent saved (``fork``); its epochs still count from 0. ``on_system_sample``:
    called with each system sample once it is written (the worker publishes it as a live event).
    """
    return Trainer(
        config,
        trainings_root,
        cache_dir,
        callbacks,
        console_stream,
        progress_stream,
        claim_folder,
        memory_limit_mb,
        resume,
        start,
        on_system_sample,
    ).run()


__all__ = ["run_experiment", "Trainer", "ExecutionResult", "Resume", "Start", "STAGES"]
