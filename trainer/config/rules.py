"""Cross-field rules: checks that need more than one group (batch arithmetic, lengths, periods).

They run after every field is individually valid, and each returns a `Problem` naming the key to
change and how. Rules check; they never rewrite what the user wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from trainer.config.problems import Problem

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig

Rule = Callable[["TrainConfig"], Problem | None]


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


def _validation_needed(cfg: TrainConfig) -> Problem | None:
    if cfg.trainer.val_every is not None and not cfg.data.has_validation:
        return Problem(
            "trainer.val_every",
            cfg.trainer.val_every,
            "validation is scheduled but the data has no validation set",
            "set data.validation_path, data.val_fraction or data.val_count, or trainer.val_every=null",
        )
    return None


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


def _sequence_fits_model(cfg: TrainConfig) -> Problem | None:
    arch = cfg.model.architecture
    if arch is not None and cfg.model.from_scratch and cfg.data.sequence_len > arch.max_position_embeddings:
        return Problem(
            "data.sequence_len",
            cfg.data.sequence_len,
            f"longer than the model's max_position_embeddings={arch.max_position_embeddings}",
            f"use data.sequence_len<={arch.max_position_embeddings}",
        )
    return None


def _ddp_needs_devices(cfg: TrainConfig) -> Problem | None:
    p = cfg.parallelism
    if p.strategy == "ddp" and p.world_size < 2:
        return Problem(
            "parallelism.devices",
            p.devices,
            "ddp with one process is just slower single-device training",
            "use parallelism=single, or parallelism.devices>=2",
        )
    return None


def _gpu_without_cuda(cfg: TrainConfig) -> Problem | None:
    if cfg.parallelism.accelerator == "gpu" and not cfg.hardware.cuda:
        return Problem(
            "parallelism.accelerator",
            "gpu",
            "no CUDA GPU on this machine (hardware.cuda=false)",
            "use parallelism.accelerator=cpu or auto, or run where a GPU is",
        )
    return None


def _more_devices_than_gpus(cfg: TrainConfig) -> Problem | None:
    p, gpus = cfg.parallelism, cfg.hardware.gpu_count or 0
    if p.strategy == "ddp" and cfg.on_gpu and cfg.hardware.cuda and p.devices > gpus:
        return Problem(
            "parallelism.devices",
            p.devices,
            f"more processes per node than GPUs ({gpus})",
            f"use parallelism.devices<={gpus}, or more parallelism.nodes",
        )
    return None


def _fp16_needs_cuda(cfg: TrainConfig) -> Problem | None:
    if cfg.trainer.precision == "16-mixed" and not cfg.on_gpu:
        return Problem(
            "trainer.precision",
            "16-mixed",
            "fp16 mixed precision needs a CUDA GPU; this run is on the CPU",
            "use trainer.precision=bf16-mixed or 32 on the CPU",
        )
    return None


def _bf16_needs_support(cfg: TrainConfig) -> Problem | None:
    if cfg.trainer.precision.startswith("bf16") and cfg.on_gpu and not cfg.hardware.bf16:
        return Problem(
            "trainer.precision",
            cfg.trainer.precision,
            "these GPUs do not support bfloat16 (hardware.bf16=false)",
            "use trainer.precision=16-mixed or 32 (or auto)",
        )
    return None


def _keep_best_needs_metric_and_validation(cfg: TrainConfig) -> Problem | None:
    loop = cfg.trainer
    if loop.keep_best and loop.best_metric is None:
        return Problem(
            "trainer.keep_best",
            loop.keep_best,
            "keeping the best checkpoints needs a metric to rank them",
            "set trainer.best_metric=val/loss or val/exact_match",
        )
    if loop.keep_best and (loop.val_every is None or not cfg.data.has_validation):
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
    if cfg.trainer.keep_last and cfg.trainer.checkpoint_every is None:
        return Problem(
            "trainer.keep_last",
            cfg.trainer.keep_last,
            "there are no periodic checkpoints to keep",
            "set trainer.checkpoint_every=N, or trainer.keep_last=null",
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


def _eight_bit_optimizer_needs_cuda(cfg: TrainConfig) -> Problem | None:
    if cfg.optimizer.name != "adamw8bit":
        return None
    if not cfg.on_gpu:
        return Problem(
            "optimizer.name",
            "adamw8bit",
            "bitsandbytes 8-bit optimizers need a CUDA GPU; this run is on the CPU",
            "use optimizer=adamw on the CPU",
        )
    if not (cfg.hardware.packages or {}).get("bitsandbytes"):
        return Problem(
            "optimizer.name",
            "adamw8bit",
            "bitsandbytes is not installed",
            "pip install bitsandbytes, or optimizer=adamw",
        )
    return None


def _fused_adamw_needs_cuda(cfg: TrainConfig) -> Problem | None:
    if getattr(cfg.optimizer, "fused", None) and not cfg.on_gpu:
        return Problem(
            "optimizer.fused",
            True,
            "the fused AdamW kernel is used on CUDA GPUs only here",
            "set optimizer.fused=null (fused on GPU) or false",
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
    _validation_needed,
    _warmup_fits,
    _sequence_fits_model,
    _ddp_needs_devices,
    _gpu_without_cuda,
    _more_devices_than_gpus,
    _fp16_needs_cuda,
    _bf16_needs_support,
    _keep_best_needs_metric_and_validation,
    _keep_last_needs_periodic,
    _worker_options_need_workers,
    _determinism_excludes_autotuning,
    _eight_bit_optimizer_needs_cuda,
    _fused_adamw_needs_cuda,
    _nesterov_needs_momentum,
)


def check(cfg: TrainConfig) -> list[Problem]:
    return [p for rule in RULES if (p := rule(cfg)) is not None]
