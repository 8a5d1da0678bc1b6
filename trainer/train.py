"""`train(cfg)`: build everything from a validated `TrainConfig`, fit, export. No Hydra past this point.

Order matters for failing fast: the tokenizer and model config are resolved (and a missing hub id
reported) before data is prepared, and data problems are reported before the model is built.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint

from trainer import provenance
from trainer.callbacks import StepProgressBar, TokenThroughput
from trainer.config import TrainConfig
from trainer.config.period import enabled, every_n, fires
from trainer.config.tracker import MlflowTracker
from trainer.data.datamodule import InstructionDataModule
from trainer.export import export_run_model
from trainer.models.accounting import meta_param_counts
from trainer.models.build import hf_config, load_tokenizer
from trainer.models.module import CausalLMModule
from trainer.periodic import side_callbacks
from trainer.steps import plan_steps
from trainer.strategy import build_strategy
from trainer.summary import print_end, print_start
from trainer.tracking import mlflow as mlflow_tracking

log = logging.getLogger("trainer")


@dataclass
class TrainResult:
    run_dir: Path
    val_loss: float | None
    metrics: dict[str, float]
    baseline: dict[str, float] = field(default_factory=dict)
    model_dir: Path | None = None
    mlflow_run_id: str | None = None


def _quiet_known_noise() -> None:
    """Warnings that are expected on these setups and say nothing actionable to a user."""
    for pattern in (
        ".*does not have many workers.*",
        ".*LeafSpec.*",
        ".*litlogger.*",
        ".*srun.*",
        ".*sync_dist=True.*",
        # Our sampler resumes by the restored step (trainer/data/sampler.py), which Lightning cannot see.
        ".*dataloader is not resumable.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)
    # Lightning attaches its own console handler; route its records through ours instead (file: INFO,
    # terminal: WARNING) so the terminal shows our summaries and the progress bar, not INFO chatter.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _accelerator(cfg: TrainConfig) -> str:
    """From the validated hardware facts, so the rules and the run agree on where it runs."""
    return "gpu" if cfg.on_gpu else "cpu"


def _checkpoint_callbacks(cfg: TrainConfig, folder: Path, last_step: int) -> list[ModelCheckpoint]:
    """Periodic checkpoints (the newest `keep_last`, ranked by step) and the `keep_best` by a val metric."""
    loop = cfg.trainer
    checkpoint = functools.partial(ModelCheckpoint, dirpath=folder, auto_insert_metric_name=False)
    callbacks = []
    every = every_n(loop.checkpoint_every, last_step)
    if every or loop.save_last:
        callbacks.append(
            checkpoint(
                filename="step-{step:06d}",
                every_n_train_steps=every,
                # Lightning only prunes to k with a monitor: "step" (max) keeps the k newest.
                monitor="step" if loop.keep_last else None,
                mode="max",
                save_top_k=(loop.keep_last or -1) if every else 0,
                save_last=loop.save_last,
                save_on_exception=loop.save_on_exception,
            )
        )
    if loop.keep_best:
        callbacks.append(
            checkpoint(
                filename="best-step-{step:06d}",
                monitor=loop.best_metric,
                mode=loop.best_mode,
                save_top_k=loop.keep_best,
                save_on_train_epoch_end=False,
            )
        )
    return callbacks


def _build_trainer(
    cfg: TrainConfig, run_dir: Path, logger: Any, throughput: TokenThroughput, has_val: bool, last_step: int
) -> L.Trainer:
    """Periods become Lightning's step intervals through `every_n`, the same arithmetic `fires` uses."""
    loop, par = cfg.trainer, cfg.parallelism
    callbacks: list[L.Callback] = [
        throughput,
        *_checkpoint_callbacks(cfg, run_dir / "checkpoints", last_step),
        *side_callbacks(cfg, run_dir, last_step),
    ]
    if loop.progress_bar:
        callbacks.append(StepProgressBar(leave=False))
    validating = has_val and enabled(loop.val_every)
    val_every = every_n(loop.val_every, last_step) or 1
    return L.Trainer(
        accelerator=_accelerator(cfg),
        devices=getattr(par, "devices", 1),
        num_nodes=getattr(par, "nodes", 1),
        strategy=build_strategy(cfg),
        precision=cfg.precision,
        max_steps=loop.max_steps or -1,
        max_epochs=loop.max_epochs,
        accumulate_grad_batches=cfg.grad_accum,
        gradient_clip_val=loop.gradient_clip,
        val_check_interval=val_every * cfg.grad_accum if validating else None,
        check_val_every_n_epoch=None if validating else 1,
        limit_val_batches=None if validating else 0,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # the datamodule shards by rank itself (trainer/data/sampler.py)
        log_every_n_steps=every_n(loop.log_every, last_step) or last_step + 1,
        logger=logger if logger is not None else False,
        callbacks=callbacks,
        default_root_dir=run_dir,
        enable_progress_bar=loop.progress_bar,
        enable_model_summary=False,
        deterministic=loop.deterministic,
        benchmark=loop.cudnn_benchmark,
        inference_mode=False,  # no_grad instead: metric states survive validate() before fit()
    )


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if not k.endswith("/s") and k != "tokens/s"}


def _validate(
    trainer: L.Trainer, module: CausalLMModule, datamodule: InstructionDataModule
) -> dict[str, float]:
    """Run validation now; metrics are read from callback_metrics because the module logs them to the
    trackers itself (against the right step), so `validate()`'s own return value does not hold them."""
    trainer.validate(module, datamodule=datamodule, verbose=False)
    return {k: v for k, v in _scalars(trainer.callback_metrics).items() if k.startswith("val/")}


def resume_checkpoint(cfg: TrainConfig, run_dir: Path) -> str | None:
    """`run.resume`: auto continues from this run folder's last checkpoint when there is one."""
    if cfg.run.resume == "none":
        return None
    if cfg.run.resume == "auto":
        last = run_dir / "checkpoints" / "last.ckpt"
        return str(last) if last.exists() else None
    return cfg.run.resume


def train(cfg: TrainConfig) -> TrainResult:
    _quiet_known_noise()
    if not cfg.on_gpu:  # transformers' save_pretrained imports deepspeed, which warns while guessing
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    run_dir = Path(cfg.run.dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file = run_dir / "config.yaml"
    config_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    provenance_file = provenance.write(run_dir)
    L.seed_everything(cfg.run.seed, workers=True, verbose=False)

    tokenizer = load_tokenizer(cfg.model)
    model_config = hf_config(cfg.model, tokenizer)
    datamodule = InstructionDataModule(cfg.data, tokenizer, cfg.run.seed)
    data_summary = datamodule.prepare()
    steps = plan_steps(cfg, len(datamodule.train_set))
    params = meta_param_counts(cfg.model, model_config, cfg.peft)

    resume = resume_checkpoint(cfg, run_dir)
    logger, tracking = None, None
    if isinstance(cfg.tracker, MlflowTracker):
        same_run = resume is not None and Path(resume).resolve().is_relative_to(run_dir.resolve())
        previous = mlflow_tracking.previous_run_id(run_dir) if same_run else None
        logger = mlflow_tracking.make_logger(cfg, cfg.tracker, previous)
        uri = mlflow_tracking.tracking_uri(cfg, cfg.tracker)
        tracking = f"mlflow {uri} (run {logger.run_id}); view: mlflow ui --backend-store-uri {uri}"
        mlflow_tracking.log_artifacts(logger, [config_file, provenance_file])
        if resume is None:  # rank 0 only (Lightning), once per MLflow run
            logger.log_metrics(mlflow_tracking.data_metrics(data_summary), step=0)
        if previous is None:  # a new MLflow run (params are immutable: a continued run has them)
            logger.log_hyperparams({"params/total": params.total, "params/trainable": params.trainable})

    throughput = TokenThroughput(every_n(cfg.trainer.log_every, steps.total) or steps.total + 1)
    has_val = bool(datamodule.val_set)
    trainer = _build_trainer(cfg, run_dir, logger, throughput, has_val, steps.total)
    module = CausalLMModule(cfg, model_config, steps.total)
    if trainer.is_global_zero:
        print_start(cfg, params, data_summary, steps, _accelerator(cfg), tracking)
        if resume:
            log.warning("Resuming from %s", resume)

    baseline: dict[str, float] = {}
    if has_val and cfg.trainer.val_at_start and resume is None:
        baseline = _validate(trainer, module, datamodule)
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    seconds = time.perf_counter() - started
    metrics = _scalars(trainer.callback_metrics)
    val_every = cfg.trainer.val_every
    if has_val and enabled(val_every) and not fires(val_every, trainer.global_step, steps.total):
        metrics.update(_validate(trainer, module, datamodule))
    if cfg.trainer.save_last:
        trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=False)

    paths = {"run folder": str(run_dir), "log": str(run_dir / "train.log")}
    exported = None
    if cfg.trainer.export_model:  # on every rank: sharded weights are gathered collectively
        exported = export_run_model(trainer, module, tokenizer, run_dir / "model")
    model_dir = exported.model if exported is not None else None
    if exported is not None:
        paths.update(exported.describe())
    if logger is not None and trainer.is_global_zero:
        logger.log_metrics({f"final/{k}": v for k, v in metrics.items()}, step=trainer.global_step)
        mlflow_tracking.log_artifacts(
            logger,
            [run_dir / "train.log"] if (run_dir / "train.log").exists() else [],
            model_dir if cfg.tracker.log_model else None,
        )  # type: ignore[union-attr]
        paths["mlflow run"] = f"{logger.run_id} in {mlflow_tracking.tracking_uri(cfg, cfg.tracker)}"
    if trainer.is_global_zero:
        print_end(cfg, metrics, baseline, seconds, throughput.mean_rate, paths)
    val_loss = metrics.get("val/loss")
    return TrainResult(
        run_dir,
        val_loss if val_loss is None or math.isfinite(val_loss) else None,
        metrics,
        baseline,
        model_dir,
        getattr(logger, "run_id", None),
    )
