"""tracker=mlflow: a Lightning `MLFlowLogger` pointed at an explicit store, the validated config as params.

MLflow 3 refuses plain `./mlruns` file stores and Lightning's logger still defaults to one, so the URI is
always explicit: by default a sqlite file under `run.output_root`, with artifacts beside it. A run folder
remembers its MLflow run (`mlflow_run_id`), so a resumed run continues the same MLflow run, and
`trainer evaluate` logs into it.

A password in `tracker.uri` (`http://user:pw@host`) is handed to MLflow through MLFLOW_TRACKING_USERNAME
and MLFLOW_TRACKING_PASSWORD and taken off the URI MLflow is given, so neither MLflow's messages nor
anything recorded holds it; params, tags and the summaries show the URI redacted (trainer/config/redact.py).
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trainer.config import TrainConfig
from trainer.config.flat import flatten
from trainer.config.redact import credentials, redact, redact_tree
from trainer.config.tracker import MlflowTracker
from trainer.errors import UserError, first_line
from trainer.tracking.base import Tracker

RUN_ID_FILE = "mlflow_run_id"
# Not the training config: detected facts of the machine (tags instead) and the inference settings.
NOT_PARAMS = ("hardware.", "infer.")
log = logging.getLogger("trainer")


@contextmanager
def _sqlite_lock(uri: str) -> Iterator[None]:
    """One process at a time creates a sqlite store, its experiment and a run: the jobs of a sweep on
    Slurm start together, and two processes migrating a new store's schema at once fail ("duplicate
    column name"). A lock file beside the database; a server URI needs none."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    lock = Path(uri.removeprefix("sqlite:///") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def connection_uri(uri: str) -> str:
    """The URI MLflow is given: credentials go to its environment variables instead (inherited by the
    ranks and by a Slurm job), so they are used but never printed. A recorded URI (password `***`)
    uses MLFLOW_TRACKING_PASSWORD as it is set."""
    bare, user, password = credentials(uri)
    if user is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"] = user
    if password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    return bare


def previous_run_id(run_dir: Path) -> str | None:
    """The MLflow run this run folder logged to before, if any."""
    path = run_dir / RUN_ID_FILE
    return path.read_text().strip() or None if path.exists() else None


class Mlflow(Tracker):
    def __init__(self, cfg: TrainConfig) -> None:
        assert isinstance(cfg.tracker, MlflowTracker)
        self.cfg = cfg
        self.settings: MlflowTracker = cfg.tracker
        self._logger: Any = None
        self._monitor: Any = None  # MLflow's system-metrics thread
        self._continued = False
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    # --- where -------------------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        if self.settings.uri:
            return self.settings.uri
        return "sqlite:///" + str(Path(self.cfg.run.output_root).resolve() / "mlflow.db")

    @property
    def shown_uri(self) -> str:
        """The URI as it is recorded and printed: any password is `***`."""
        return redact(self.uri)

    def _connect(self) -> str:
        return connection_uri(self.uri)

    @property
    def artifact_root(self) -> str | None:
        """Artifacts beside the default sqlite store; a server (tracker.uri) keeps its own."""
        if self.settings.uri:
            return None
        return str(Path(self.cfg.run.output_root).resolve() / "mlartifacts")

    @property
    def experiment(self) -> str:
        return self.settings.experiment or self.cfg.run.experiment

    def _run_name(self) -> str:
        """The run's name; a sweep job's is its swept values (`lr=0.001,seed=2`), else sweep-index."""
        sweep = self.cfg.run.sweep
        if sweep is None:
            return self.cfg.run.name
        return sweep.label or f"{sweep.id}-{sweep.job}"

    def _tags(self) -> dict[str, str]:
        run = self.cfg.run
        tags = {"experiment": run.experiment, "run_dir": str(Path(run.dir).resolve()), **run.tags}
        tags["host"] = socket.gethostname()
        if os.environ.get("SLURM_JOB_ID"):
            tags["slurm_job_id"] = os.environ["SLURM_JOB_ID"]
        if run.description:
            tags["mlflow.note.content"] = run.description
        if run.sweep is not None:
            tags.update({"sweep": run.sweep.id, "sweep_job": str(run.sweep.job)})
            if run.sweep.parent:
                tags["mlflow.parentRunId"] = run.sweep.parent  # shown nested under the sweep's run
        return redact_tree(tags)

    # --- training ----------------------------------------------------------------------------------

    def start(self, run_dir: Path, resume: str | None) -> None:
        """A new MLflow run, or the one this run folder logged to when the fit resumes from one of its
        own checkpoints: its metric curves then go on from the resumed step. MLflow params are
        immutable, so on resume only new keys are logged, and a value that changed (e.g. a longer
        trainer.max_steps) is recorded as a `resume.changed.<key>` tag."""
        from lightning.pytorch.utilities import rank_zero_only

        from trainer.tracking.mlflow_logger import RunLogger, quick_http

        if rank_zero_only.rank != 0:
            # Only rank 0 talks to the store: under srun every rank starts at once, and two processes
            # creating one sqlite store race in its schema migration ("duplicate column name").
            return
        same_run = resume is not None and Path(resume).resolve().is_relative_to(run_dir.resolve())
        previous = previous_run_id(run_dir) if same_run else None
        with _sqlite_lock(self.uri):  # the store's creation, the experiment's, the run's
            quick_http()
            self._logger = RunLogger(
                experiment_name=self.experiment,
                run_name=self._run_name(),
                tracking_uri=self._connect(),
                tags=self._tags(),
                artifact_location=self.artifact_root,
                run_id=previous,
            )
            _ = self._logger.run_id
        if previous is not None:  # it was KILLED, FAILED or left RUNNING: it runs again
            self._logger.experiment.update_run(previous, status="RUNNING")
            self._logger.stored_through = _stored_steps(self._logger.experiment, previous)
        self._continued = previous is not None
        flat = {k: redact(str(v)) for k, v in flatten(self.cfg.model_dump(mode="json")).items()}
        params = {k: v for k, v in flat.items() if not k.startswith(NOT_PARAMS)}
        facts = {k: v for k, v in flat.items() if k.startswith("hardware.") and v != "None"}
        self.log_tags(facts)
        self._watch_system()
        if previous is not None:
            before = self._logger.experiment.get_run(previous).data.params
            for key, value in params.items():
                if key in before and before[key] != value[:6000]:
                    self._logger.experiment.set_tag(previous, f"resume.changed.{key}", value)
            params = {k: v for k, v in params.items() if k not in before}
        self._logger.log_hyperparams(params)
        (run_dir / RUN_ID_FILE).write_text(self._logger.run_id)

    @property
    def logger(self) -> Any:
        return self._logger

    @property
    def run_id(self) -> str | None:
        return self._logger.run_id if self._logger is not None else None

    @property
    def continued(self) -> bool:
        return self._continued

    def _watch_system(self) -> None:
        """MLflow's own system metrics (`system/cpu_utilization_percentage`, memory, disk, GPU), sampled
        in a thread of this process and logged to this run until it ends."""
        every = self.settings.system_metrics_every_s
        if every is None:
            return
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self._monitor = SystemMetricsMonitor(
            self._logger.run_id,
            sampling_interval=every,
            resume_logging=self._continued,
            tracking_uri=self._connect(),
        )
        self._monitor.start()

    def _stop_watching(self) -> None:
        if self._monitor is not None:
            self._monitor.finish()
            self._monitor = None

    def finish(self) -> None:
        self._stop_watching()
        if self._logger is None:
            return
        self._logger.closing = True
        self._logger.finalize("success")
        if self._logger.unsent():
            log.warning(
                "%d metric points could not be sent to the tracking server (it was unreachable); "
                "train.log has the step lines",
                self._logger.unsent(),
            )

    def log_datasets(self, datasets: list[dict[str, Any]]) -> None:
        """MLflow dataset inputs (the run page's Datasets): name, source, digest and counts as the
        profile, tagged with the context (train/eval)."""
        if self._logger is None or not datasets:
            return
        import json

        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = []
        for d in datasets:
            local = Path(d["source"]).exists()
            dataset = Dataset(
                name=d["name"],
                digest=d["digest"] or "none",
                source_type="local" if local else "hugging_face",
                source=json.dumps({"uri": d["source"]} if local else {"path": d["source"]}),
                profile=json.dumps(d["profile"]),
            )
            inputs.append(DatasetInput(dataset, tags=[InputTag("mlflow.data.context", d["context"])]))
        self._logger.experiment.log_inputs(self._logger.run_id, datasets=inputs)

    def log_tags(self, tags: dict[str, str]) -> None:
        if self._logger is None or not tags:
            return
        from mlflow.entities import RunTag

        batch = [RunTag(k, redact(str(v))[:5000]) for k, v in tags.items()]
        self._logger.experiment.log_batch(self._logger.run_id, tags=batch)

    def fail(self, killed: bool = False) -> None:
        self._stop_watching()
        if self._logger is not None:
            self._logger.finalize("KILLED" if killed else "failed")

    def log_params(self, params: dict[str, Any]) -> None:
        if self._logger is not None:
            self._logger.log_hyperparams({k: redact(str(v)) for k, v in params.items()})

    def log_files(self, files: list[Path]) -> None:
        if self._logger is None:
            return
        experiment, run_id = self._logger.experiment, self._logger.run_id
        try:
            for f in files:
                experiment.log_artifact(run_id, str(f))
        except Exception as err:  # noqa: BLE001 - the files stay in the run folder; the run goes on
            log.warning("artifacts not uploaded to the tracking server: %s", first_line(err))

    def log_model(self, folder: Path, step: int, adapter: bool) -> str | None:
        """A logged model (MLflow 3) linked to this run as its output at `step`, its artifacts the
        exported folder (`mlflow.artifacts.download_artifacts("models:/<id>")` gives it back, loadable
        with transformers/PEFT); with `register_as`, a new version of that registered model."""
        name = self.settings.register_as
        if self._logger is None or not (self.settings.log_model or name):
            return None
        from mlflow.entities import LoggedModelOutput
        from mlflow.exceptions import MlflowException

        client, run_id = self._logger.experiment, self._logger.run_id
        try:
            model = client.create_logged_model(
                self._experiment_id(client),
                name=self._run_name(),
                source_run_id=run_id,
                model_type="peft-adapter" if adapter else "transformers",
            )
            client.log_model_artifacts(model.model_id, str(folder))
            client.finalize_logged_model(model.model_id, "READY")
            client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step)])
            where = f"models:/{model.model_id}"
            if name:
                try:
                    client.get_registered_model(name)
                except MlflowException:  # not registered yet
                    client.create_registered_model(name)
                version = client.create_model_version(name, where, run_id=run_id, model_id=model.model_id)
                where = f"models:/{name}/{version.version}"
            return where
        except Exception as err:  # noqa: BLE001 - the model stays in the run folder; the run goes on
            log.warning("model not logged to MLflow: %s", first_line(err))
            return None

    def describe(self) -> str:
        return (
            f"mlflow {self.shown_uri} (run {self._logger.run_id}); "
            f"view: mlflow ui --backend-store-uri {self.shown_uri}"
        )

    def location(self) -> str | None:
        return f"{self._logger.run_id} in {self.shown_uri}"

    # --- a sweep's own run -------------------------------------------------------------------------

    def open_sweep(self, sweep_id: str, jobs: int) -> str | None:
        from mlflow.tracking import MlflowClient

        from trainer.tracking.mlflow_logger import quick_http

        quick_http()
        with _sqlite_lock(self.uri):
            client = MlflowClient(tracking_uri=self._connect())
            tags = {"sweep": sweep_id, "sweep_jobs": str(jobs), "experiment": self.cfg.run.experiment}
            experiment, name = self._experiment_id(client), f"sweep {sweep_id}"
            # A sweep started again in its folder (a search continued after an interruption) goes on in
            # the run it had, so its trials stay under one parent.
            found = client.search_runs(
                [experiment], f"attributes.run_name = '{name}' and tags.sweep = '{sweep_id}'", max_results=1
            )
            if found:
                client.update_run(found[0].info.run_id, status="RUNNING")
                return found[0].info.run_id
            return client.create_run(experiment, run_name=name, tags=tags).info.run_id

    def _experiment_id(self, client: Any) -> str:
        found = client.get_experiment_by_name(self.experiment)
        return found.experiment_id if found else client.create_experiment(self.experiment, self.artifact_root)

    def close_sweep(self, run_id: str, failed: int) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self._connect())
        client.set_tag(run_id, "sweep_failed_jobs", str(failed))
        client.set_terminated(run_id, "FAILED" if failed else "FINISHED")

    # --- trainer evaluate --------------------------------------------------------------------------

    def record_evaluation(
        self, metrics: dict[str, float], run_dir: Path | None, tags: dict[str, str]
    ) -> str | None:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        uri = self.shown_uri
        run_id = previous_run_id(run_dir) if run_dir is not None else None
        if run_id and uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            raise UserError(
                f"the run's MLflow store {uri} does not exist (the run folder was moved?)",
                hint="set tracker.uri in the run's config.yaml to where mlflow.db is now",
            )
        client = MlflowClient(tracking_uri=self._connect())
        try:
            if run_id:
                _log(client, run_id, metrics, _last_step(client, run_id))
            else:
                name = f"evaluate-{self.cfg.run.name}"
                run_id = client.create_run(self._experiment_id(client), run_name=name, tags=tags).info.run_id
                _log(client, run_id, metrics, 0)
                client.set_terminated(run_id)
        except MlflowException as err:
            raise UserError(
                f"MLflow at {uri}: {first_line(err)}", hint="check tracker.uri and the run's mlflow_run_id"
            ) from None
        return f"{run_id} in {uri}"


def _log(client: Any, run_id: str, metrics: dict[str, float], step: int) -> None:
    for key, value in metrics.items():
        client.log_metric(run_id, key, value, step=step)


def _stored_steps(client: Any, run_id: str) -> dict[str, int]:
    """The last step of each metric the run holds, but MLflow's system metrics (sampled by their own
    thread, not sent by the training loop): a resumed fit's replayed points up to it are not logged again."""
    keys = [key for key in client.get_run(run_id).data.metrics if not key.startswith("system/")]
    return {key: max(m.step for m in client.get_metric_history(run_id, key)) for key in keys}


def _last_step(client: Any, run_id: str) -> int:
    """The run's last logged training step: an evaluation lines up with its curves there."""
    steps = [m.step for key in ("val/loss", "train/loss") for m in client.get_metric_history(run_id, key)]
    return max(steps, default=0)
