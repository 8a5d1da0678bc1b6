"""Rules on the training loop: batch arithmetic, schedule length, validation, checkpoints, resume."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from trainer.config.period import enabled, never_fires
from trainer.config.problems import Problem

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig

Rule = Callable[["TrainConfig"], Any]


def _batch_divides(cfg: TrainConfig) -> Problem | None:
    d, ranks = cfg.data, cfg.parallelism.world_size
    per_step = d.micro_batch * ranks
    if d.global_batch % per_step == 0:
        return None
    lower = max(per_step, d.global_batch // per_step * per_step)
    return Problem(
        "data.global_batch",
        d.global_batch,
        f"not divisible by micro_batch {d.micro_batch} x {ranks} data-parallel rank(s)",
        f"use data.global_batch={lower} or {lower + per_step}, or change data.micro_batch",
    )


def _validation_needs_data(cfg: TrainConfig) -> Iterator[Problem]:
    if cfg.data.has_validation:
        return
    fix = "set data.validation, data.val_fraction or data.val_count"
    if enabled(cfg.trainer.val_every):
        yield Problem(
            "trainer.val_every",
            cfg.trainer.val_every,
            "validation is scheduled but the data has no validation set",
            f"{fix}, or trainer.val_every=disable",
        )
    if cfg.trainer.val_at_start:
        yield Problem(
            "trainer.val_at_start",
            True,
            "a step-0 validation needs a validation set",
            f"{fix}, or trainer.val_at_start=false",
        )


def _warmup_fits(cfg: TrainConfig) -> Problem | None:
    steps = cfg.trainer.max_steps
    if steps is not None and cfg.scheduler.warmup_steps >= steps:
        return Problem(
            "scheduler.warmup_steps",
            cfg.scheduler.warmup_steps,
            f"warmup is not shorter than the run (trainer.max_steps={steps})",
            f"use scheduler.warmup_steps<{steps} or scheduler.warmup_ratio",
        )
    return None


def _periods_fit_run(cfg: TrainConfig) -> Iterator[Problem]:
    """An int period longer than a run of known length never fires. Validation, checkpoints and logging
    still happen at the end of the run (final validation, last.ckpt), so only the actions a user turns
    on explicitly and would otherwise silently miss are checked: manual GC and profiling."""
    steps = cfg.trainer.max_steps
    for key, period in (("gc.every", cfg.gc.every), ("profiler.every", cfg.profiler.every)):
        if never_fires(period, steps):
            yield Problem(
                key,
                period,
                f"longer than the run (trainer.max_steps={steps}), so it never fires",
                f"use {key}<={steps}, {key}=last_step, or {key}=disable",
            )


def _keep_best_needs_metric_and_validation(cfg: TrainConfig) -> Problem | None:
    loop = cfg.trainer
    if loop.keep_best and loop.best_metric is None:
        return Problem(
            "trainer.keep_best",
            loop.keep_best,
            "keeping the best checkpoints needs a metric to rank them",
            "set trainer.best_metric=val/loss or val/exact_match",
        )
    if loop.keep_best and (not enabled(loop.val_every) or not cfg.data.has_validation):
        return Problem(
            "trainer.keep_best",
            loop.keep_best,
            "best checkpoints are ranked by validation, which never runs",
            "set trainer.val_every and a validation set, or trainer.keep_best=0",
        )
    if loop.best_metric is not None and not loop.keep_best:
        return Problem(
            "trainer.best_metric",
            loop.best_metric,
            "has no effect while trainer.keep_best=0",
            "set trainer.keep_best=N, or remove best_metric",
        )
    return None


def _keep_last_needs_periodic(cfg: TrainConfig) -> Problem | None:
    if cfg.trainer.keep_last and not enabled(cfg.trainer.checkpoint_every):
        return Problem(
            "trainer.keep_last",
            cfg.trainer.keep_last,
            "there are no periodic checkpoints to keep",
            "set trainer.checkpoint_every=N, or trainer.keep_last=null",
        )
    return None


def _resume_path_exists(cfg: TrainConfig) -> Problem | None:
    path = cfg.run.resume_path
    if path is not None and not os.path.exists(path):
        return Problem(
            "run.resume",
            path,
            f"no checkpoint there (looked in {os.path.abspath(path)})",
            "pass an existing .ckpt file or checkpoint folder, run.resume=auto, or run.resume=none",
        )
    return None


def _worker_options_need_workers(cfg: TrainConfig) -> Problem | None:
    d = cfg.data
    if d.num_workers == 0:
        for key, on in (("persistent_workers", d.persistent_workers), ("prefetch_factor", d.prefetch_factor)):
            if on:
                return Problem(
                    f"data.{key}",
                    on,
                    "applies to worker processes, and data.num_workers=0 starts none",
                    f"set data.num_workers>0, or remove data.{key}",
                )
    return None


def _determinism_excludes_autotuning(cfg: TrainConfig) -> Problem | None:
    if cfg.trainer.deterministic and cfg.trainer.cudnn_benchmark:
        return Problem(
            "trainer.cudnn_benchmark",
            True,
            "cuDNN autotuning picks kernels by timing, so runs are not deterministic",
            "set trainer.cudnn_benchmark=false, or trainer.deterministic=false",
        )
    return None


def _clip_norm_needs_clipping(cfg: TrainConfig) -> Problem | None:
    loop = cfg.trainer
    if loop.gradient_clip is None and loop.gradient_clip_norm != 2.0:
        return Problem(
            "trainer.gradient_clip_norm",
            loop.gradient_clip_norm,
            "has no effect while trainer.gradient_clip=null",
            "set trainer.gradient_clip=<max norm>, or remove gradient_clip_norm",
        )
    return None


def _nesterov_needs_momentum(cfg: TrainConfig) -> Problem | None:
    opt = cfg.optimizer
    if opt.name == "sgd" and opt.nesterov and not opt.momentum:
        return Problem(
            "optimizer.nesterov", True, "Nesterov needs momentum > 0", "set optimizer.momentum=0.9"
        )
    return None


RULES: tuple[Rule, ...] = (
    _batch_divides,
    _validation_needs_data,
    _warmup_fits,
    _periods_fit_run,
    _keep_best_needs_metric_and_validation,
    _keep_last_needs_periodic,
    _resume_path_exists,
    _worker_options_need_workers,
    _determinism_excludes_autotuning,
    _clip_norm_needs_clipping,
    _nesterov_needs_momentum,
)
