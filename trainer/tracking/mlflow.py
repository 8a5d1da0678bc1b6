"""MLflow: a Lightning `MLFlowLogger` pointed at an explicit store, with the validated config as params.

MLflow 3 refuses plain `./mlruns` file stores and Lightning's logger still defaults to one, so the URI is
always explicit: by default a sqlite file under `run.output_root`, with artifacts beside it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trainer.config import TrainConfig
from trainer.config.tracker import MlflowTracker


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 1e-3}} -> {'optimizer.lr': 1e-3}; lists and None are kept as their string form."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def tracking_uri(cfg: TrainConfig, tracker: MlflowTracker) -> str:
    if tracker.uri:
        return tracker.uri
    return "sqlite:///" + str(Path(cfg.run.output_root).resolve() / "mlflow.db")


def artifact_root(cfg: TrainConfig) -> str:
    return str(Path(cfg.run.output_root).resolve() / "mlartifacts")


def run_tags(cfg: TrainConfig) -> dict[str, str]:
    tags = {"experiment": cfg.run.experiment, "run_dir": str(Path(cfg.run.dir).resolve()), **cfg.run.tags}
    if cfg.run.description:
        tags["mlflow.note.content"] = cfg.run.description
    if cfg.run.sweep is not None:
        tags.update({"sweep": cfg.run.sweep.id, "sweep_job": str(cfg.run.sweep.job)})
    return tags


RUN_ID_FILE = "mlflow_run_id"


def previous_run_id(run_dir: Path) -> str | None:
    """The MLflow run this run folder logged to before (for resume into the same run)."""
    path = run_dir / RUN_ID_FILE
    return path.read_text().strip() or None if path.exists() else None


def make_logger(cfg: TrainConfig, tracker: MlflowTracker, resume_run_id: str | None = None) -> Any:
    """A new MLflow run, or with `resume_run_id` the same run continued: its metric curves go on from
    the resumed step. MLflow params are immutable, so on resume only new keys are logged, and a value
    that changed (e.g. a longer trainer.max_steps) is recorded as a `resume.changed.<key>` tag."""
    from lightning.pytorch.loggers import MLFlowLogger

    name = cfg.run.name if cfg.run.sweep is None else f"{cfg.run.sweep.id}-{cfg.run.sweep.job}"
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logger = MLFlowLogger(
        experiment_name=tracker.experiment or cfg.run.experiment,
        run_name=name,
        tracking_uri=tracking_uri(cfg, tracker),
        tags=run_tags(cfg),
        artifact_location=artifact_root(cfg) if not tracker.uri else None,
        run_id=resume_run_id,
    )
    params = {k: str(v) for k, v in flatten(cfg.model_dump(mode="json")).items()}
    if logger.run_id is None:  # a non-zero rank: Lightning gives it a dummy experiment
        return logger
    if resume_run_id is not None:
        before = logger.experiment.get_run(resume_run_id).data.params
        for key, value in params.items():
            if key in before and before[key] != value[:6000]:
                logger.experiment.set_tag(resume_run_id, f"resume.changed.{key}", value)
        params = {k: v for k, v in params.items() if k not in before}
    logger.log_hyperparams(params)
    (Path(cfg.run.dir) / RUN_ID_FILE).write_text(logger.run_id)
    return logger


def log_artifacts(logger: Any, files: list[Path], folder: Path | None = None) -> None:
    for f in files:
        logger.experiment.log_artifact(logger.run_id, str(f))
    if folder is not None:
        logger.experiment.log_artifacts(logger.run_id, str(folder), artifact_path=folder.name)


def data_metrics(summary: Any) -> dict[str, float]:
    """The data's counts as step-0 metrics: examples read, kept and dropped by reason, packing."""
    out: dict[str, float] = {
        "data/train_examples": summary.train_examples,
        "data/val_examples": summary.val_examples,
    }
    for group, by_name in (("train", summary.train), ("val", summary.val)):
        for name, s in by_name.items():
            out[f"data/{group}/{name}/read"] = s.read
            out[f"data/{group}/{name}/kept"] = s.kept
            out[f"data/{group}/{name}/tokens"] = s.tokens
            for reason, n in s.dropped.items():
                out[f"data/{group}/{name}/dropped_{reason}"] = n
    if summary.packing_efficiency is not None:
        out["data/packing_efficiency"] = summary.packing_efficiency
        out["data/packed_rows"] = summary.packed_rows
    return out
