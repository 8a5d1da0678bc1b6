"""`train(cfg)`: a validated `TrainConfig` in, a trained and exported run out. No Hydra past this point.

It reads as its phases: open the run folder, prepare the inputs (tokenizer, data, step count), start
tracking, build the fit (Lightning trainer, module, strategy), run it, export, report. Order matters for
failing fast: the tokenizer and model config are resolved (a missing hub id reported) before data is
prepared, and data problems are reported before the model is built.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.utilities import rank_zero_only

from trainer.config import TrainConfig
from trainer.config.objective import reference_kind
from trainer.config.period import enabled, every_n, fires
from trainer.config.redact import redact_tree
from trainer.config.steps import StepCount, count_steps
from trainer.data.datamodule import InstructionDataModule
from trainer.data.summary import DataSummary
from trainer.disk import require_run_folder
from trainer.models.accounting import ParamCounts, meta_param_counts
from trainer.models.build import hf_config, load_tokenizer
from trainer.parallel import Parallel, for_config
from trainer.tracking import Tracker
from trainer.tracking import for_config as tracker_for
from trainer.training import provenance
from trainer.training.callbacks import StepProgressBar, TrainMetrics
from trainer.training.checkpoints import (
    AtomicCheckpointIO,
    checkpoint_callbacks,
    last_checkpoint,
    resume_checkpoint,
    sweep_partials,
)
from trainer.training.export import Exported, export_run_model, exported_at
from trainer.training.metrics_file import MetricsFile
from trainer.training.model_card import CardFacts
from trainer.training.module import CausalLMModule
from trainer.training.periodic import side_callbacks
from trainer.training.progress import ProgressLog
from trainer.training.pruning import pruning_callbacks
from trainer.training.run_lock import lock_run_folder, release_run_folder
from trainer.training.run_record import RunRecord, Saved, check_data, check_resume
from trainer.training.signals import signal_handling
from trainer.training.step_validation import validate_after_steps
from trainer.training.summary import print_end, print_start
from trainer.training.threads import thread_callbacks

log = logging.getLogger("trainer")


@dataclass
class TrainResult:
    run_dir: Path
    val_loss: float | None
    metrics: dict[str, float]
    baseline: dict[str, float] = field(default_factory=dict)
    model_dir: Path | None = None
    run_id: str | None = None  # the tracker's id of the run (MLflow), None with tracker=none


@dataclass
class Inputs:
    """What the fit is built from, known before any weight exists."""

    tokenizer: Any
    model_config: Any
    data: InstructionDataModule
    summary: DataSummary
    steps: StepCount
    params: ParamCounts


@dataclass
class Fit:
    trainer: L.Trainer
    module: CausalLMModule
    parallel: Parallel
    throughput: TrainMetrics  # also counts the tokens of the run
    threads: list[L.Callback]  # the thread governor, when trainer.threads=auto chose one


@dataclass
class Outcome:
    metrics: dict[str, float]
    baseline: dict[str, float]
    seconds: float


def train(cfg: TrainConfig) -> TrainResult:
    run_dir = open_run_folder(cfg)
    tracker: Tracker | None = None
    try:
        resume, saved = resume_point(cfg, run_dir)
        if saved is not None and already_complete(cfg, run_dir, saved):
            return TrainResult(run_dir, saved.metrics.get("val/loss"), saved.metrics)
        files = write_run_files(cfg, run_dir)
        inputs = prepare_inputs(cfg)
        check_data(cfg, saved, inputs.summary.key)
        tracker = start_tracking(cfg, run_dir, resume, inputs, files)
        fit = build_fit(cfg, run_dir, inputs, tracker)
        if fit.trainer.is_global_zero:
            print_start(cfg, inputs.params, inputs.summary, inputs.steps, tracker.describe())
            if resume:
                log.warning("Resuming from %s", resume)
        outcome = run_fit(cfg, run_dir, fit, inputs, resume, saved)
        exported = None
        if cfg.trainer.export_model:  # on every rank: sharded weights are gathered collectively
            card = card_facts(fit, inputs, outcome, resumed=resume is not None)
            exported = export_run_model(
                fit.trainer, fit.module, fit.parallel, inputs.tokenizer, run_dir / "model", card
            )
        result = report(cfg, run_dir, fit, outcome, exported, tracker)
        fit.parallel.close()
        return result
    except BaseException as err:  # the tracker run says how it ended (a signal's stop says KILLED itself)
        if tracker is not None:
            tracker.fail(killed=isinstance(err, KeyboardInterrupt))
        raise
    finally:
        release_run_folder()


def open_run_folder(cfg: TrainConfig) -> Path:
    """The run folder, locked for this process (rank 0: the other ranks share it by design)."""
    run_dir = Path(cfg.run.dir)
    require_run_folder(run_dir, cfg.run.output_root)  # made and probed: a one-line error, not a traceback
    if rank_zero_only.rank == 0:
        lock_run_folder(run_dir)
    return run_dir


def write_run_files(cfg: TrainConfig, run_dir: Path) -> list[Path]:
    """The resolved config (what ranks, resumes and `trainer generate` read) and provenance, once the
    resume is known to fit (a refused config must not replace the run's own); seeds."""
    config_file = run_dir / "config.yaml"
    # Passwords in URLs (tracker.uri) are written `***`: a resume or `trainer evaluate` takes them from
    # the environment (MLFLOW_TRACKING_PASSWORD), never from a file in the run folder.
    config = redact_tree(cfg.model_dump(mode="json"))
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    L.seed_everything(cfg.run.seed, workers=True, verbose=False)
    return [config_file, provenance.write(run_dir)]


def resume_point(cfg: TrainConfig, run_dir: Path) -> tuple[str | None, Saved | None]:
    """The checkpoint to resume from, checked against this config before any data is prepared."""
    if rank_zero_only.rank == 0:
        for left in sweep_partials(run_dir):
            log.warning("removed %s, left by a save that was interrupted", left)
    resume = resume_checkpoint(cfg, run_dir)
    return resume, check_resume(cfg, resume) if resume else None


def already_complete(cfg: TrainConfig, run_dir: Path, saved: Saved) -> bool:
    """A run started again after it reached `trainer.max_steps` and exported says so and stops (a run
    that died during its export goes on: the fit restores the weights and the export runs again)."""
    budget = cfg.trainer.max_steps
    exported = not cfg.trainer.export_model or exported_at(run_dir) == saved.step
    if not budget or saved.step < budget or not exported:
        return False
    if rank_zero_only.rank == 0:
        model = f"; model: {run_dir / 'model'}" if cfg.trainer.export_model else ""
        print(
            f"[trainer] run {cfg.run.experiment}/{cfg.run.name} is already complete "
            f"(step {saved.step} of {budget}){model}\n"
            "  to train on: raise trainer.max_steps; to start over: run.resume=none or another run.name",
            flush=True,
        )
    return True


def prepare_inputs(cfg: TrainConfig) -> Inputs:
    tokenizer = load_tokenizer(cfg.model)
    model_config = hf_config(cfg.model, tokenizer)
    precomputed = reference_kind(cfg.objective, cfg.peft.method) == "precomputed"
    data = InstructionDataModule(cfg.data, tokenizer, cfg.run.seed, indexed=precomputed)
    prepared = data.prepare()
    steps = count_steps(cfg, len(prepared.train_items))
    params = meta_param_counts(cfg.model, model_config, cfg.peft)
    return Inputs(tokenizer, model_config, data, prepared.summary, steps, params)


def start_tracking(
    cfg: TrainConfig, run_dir: Path, resume: str | None, inputs: Inputs, files: list[Path]
) -> Tracker:
    """A new tracker run, or the one this run folder had when the fit resumes from its own checkpoint."""
    tracker = tracker_for(cfg)
    tracker.start(run_dir, resume)
    tracker.log_files(files)
    tracker.log_tags(provenance.tags(run_dir))
    if resume is None:  # once per tracker run: counts are params, not one-point metric charts
        tracker.log_params(inputs.summary.metrics())
        tracker.log_datasets(inputs.summary.inputs(cfg.data.paths()))
    if not tracker.continued:  # params are immutable: a continued run has them
        tracker.log_params({"params/total": inputs.params.total, "params/trainable": inputs.params.trainable})
    return tracker


def build_fit(cfg: TrainConfig, run_dir: Path, inputs: Inputs, tracker: Tracker) -> Fit:
    """The Lightning trainer with our callbacks and loggers (the tracker's, metrics.jsonl); periods
    become Lightning's step intervals through `every_n`, the same arithmetic `fires` uses."""
    loop, par, last = cfg.trainer, cfg.parallelism, inputs.steps.total
    parallel = for_config(cfg)
    throughput = TrainMetrics(every_n(loop.log_every, last) or last + 1)  # first: before checkpoints
    checkpoints = checkpoint_callbacks(cfg, run_dir, last)
    threads = thread_callbacks(cfg)
    on_signal, plugins = signal_handling(cfg, run_dir)
    if par.strategy in ("single", "ddp"):  # single-file checkpoints (sharded ones are written by DCP)
        plugins.append(AtomicCheckpointIO())
    callbacks: list[L.Callback] = [
        throughput,
        ProgressLog(every_n(loop.log_every, last) or last, last, throughput),
        *threads,
        *checkpoints,
        *side_callbacks(cfg, run_dir, last),
        *parallel.callbacks(),
        *on_signal,
        RunRecord(cfg, inputs.summary.key),
        *pruning_callbacks(cfg),
    ]
    bar = loop.progress_bar and sys.stdout.isatty()  # elsewhere the plain lines of progress.py
    if bar:
        callbacks.append(StepProgressBar(leave=False))
    validating = bool(len(inputs.data.prepared.val)) and enabled(loop.val_every)
    val_every = every_n(loop.val_every, last) or 1
    trainer = L.Trainer(
        accelerator="gpu" if cfg.on_gpu else "cpu",  # the validated facts, so rules and run agree
        devices=getattr(par, "devices", 1),
        num_nodes=getattr(par, "nodes", 1),
        strategy=parallel.strategy(),
        plugins=plugins or None,
        precision=cfg.precision,
        max_steps=loop.max_steps or -1,
        max_epochs=loop.max_epochs,
        accumulate_grad_batches=cfg.grad_accum,
        gradient_clip_val=loop.gradient_clip,
        val_check_interval=val_every * cfg.grad_accum if validating else None,  # when: step_validation.py
        check_val_every_n_epoch=None if validating else 1,
        limit_val_batches=None if validating else 0,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # the datamodule shards by rank itself (trainer/data/sampler.py)
        log_every_n_steps=every_n(loop.log_every, last) or last + 1,  # unused: TrainMetrics sends
        logger=[x for x in (tracker.logger, MetricsFile(run_dir)) if x is not None],
        callbacks=callbacks,
        enable_checkpointing=bool(checkpoints),  # else Lightning adds a checkpoint of its own
        default_root_dir=run_dir,
        enable_progress_bar=bar,
        enable_model_summary=False,
        deterministic=loop.deterministic,
        benchmark=loop.cudnn_benchmark,
        inference_mode=False,  # no_grad instead: metric states survive validate() before fit()
    )
    if validating:
        validate_after_steps(trainer, loop.val_every, last)
    module = CausalLMModule(cfg, inputs.model_config, last, parallel)
    return Fit(trainer, module, parallel, throughput, threads)


def run_fit(
    cfg: TrainConfig, run_dir: Path, fit: Fit, inputs: Inputs, resume: str | None, saved: Saved | None
) -> Outcome:
    """The step-0 baseline, the fit, a final validation unless the last step had one, last.ckpt. A fit
    that had nothing left to train (a rerun after a crash in the export) reports the checkpoint's
    metrics."""
    has_val = bool(len(inputs.data.prepared.val))
    baseline: dict[str, float] = {}
    if has_val and cfg.trainer.val_at_start and resume is None:
        baseline = _validate(fit, inputs)
    started = time.perf_counter()
    fit.trainer.fit(fit.module, datamodule=inputs.data, ckpt_path=resume)
    seconds = time.perf_counter() - started
    metrics = _scalars(fit.trainer.callback_metrics)
    if saved is not None and fit.trainer.global_step == saved.step:
        metrics = {**saved.metrics, **metrics}
    val_every = cfg.trainer.val_every
    if has_val and enabled(val_every) and not fires(val_every, fit.trainer.global_step, inputs.steps.total):
        metrics.update(_validate(fit, inputs))
    if cfg.trainer.save_last:
        fit.trainer.save_checkpoint(last_checkpoint(run_dir), weights_only=False)
    return Outcome(metrics, baseline, seconds)


def card_facts(fit: Fit, inputs: Inputs, outcome: Outcome, resumed: bool) -> CardFacts:
    """What the exported model's card reports beside the config: data, steps, tokens, final metrics."""
    return CardFacts(
        summary=inputs.summary,
        steps=inputs.steps,
        step=fit.trainer.global_step,
        metrics=outcome.metrics,
        tokens=fit.throughput.total_tokens,
        baseline=outcome.baseline,
        resumed=resumed,
    )


def report(
    cfg: TrainConfig, run_dir: Path, fit: Fit, outcome: Outcome, exported: Exported | None, tracker: Tracker
) -> TrainResult:
    """Final metrics and files to the tracker, the end summary; what the run produced."""
    paths = {"run folder": str(run_dir), "log": str(run_dir / "train.log")}
    model_dir = exported.model if exported is not None else None
    if exported is not None:
        paths.update(exported.describe())
    trainer = fit.trainer
    if trainer.is_global_zero:
        log_file = run_dir / "train.log"
        tracker.log_files([log_file] if log_file.exists() else [])
        if exported is not None:
            logged = tracker.log_model(exported.model, trainer.global_step, exported.adapter)
            if logged is not None:
                paths[f"{cfg.tracker.kind} model"] = logged
        location = tracker.location()
        if location is not None:
            paths[f"{cfg.tracker.kind} run"] = location
        threads = fit.threads[0].describe() if fit.threads else f"{torch.get_num_threads()} per process"
        paths = {"threads": threads, **paths}
        print_end(cfg, outcome.metrics, outcome.baseline, outcome.seconds, fit.throughput.mean_rate, paths)
        tracker.finish()
    val_loss = outcome.metrics.get("val/loss")
    return TrainResult(
        run_dir,
        val_loss if val_loss is None or math.isfinite(val_loss) else None,
        outcome.metrics,
        outcome.baseline,
        model_dir,
        tracker.run_id,
    )


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if not k.endswith("/s") and k != "tokens/s"}


def _validate(fit: Fit, inputs: Inputs) -> dict[str, float]:
    """Run validation now; metrics are read from callback_metrics because the module logs them to the
    trackers itself (against the right step), so `validate()`'s own return value does not hold them."""
    fit.trainer.validate(fit.module, datamodule=inputs.data, verbose=False)
    return {k: v for k, v in _scalars(fit.trainer.callback_metrics).items() if k.startswith("val/")}
