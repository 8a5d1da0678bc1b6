"""One-screen summaries printed at the start and the end of a run (and written to the log file)."""

from __future__ import annotations

from pathlib import Path

from trainer.config import TrainConfig
from trainer.config.steps import StepCount
from trainer.console import panel
from trainer.data.summary import DataSummary, human
from trainer.models.accounting import ParamCounts


def print_start(
    cfg: TrainConfig, params: ParamCounts, data: DataSummary, steps: StepCount, tracking: str
) -> None:
    m, d = cfg.model, cfg.data
    arch = m.architecture
    shape = f", {arch.num_hidden_layers} layers x {arch.hidden_size}" if arch and m.from_scratch else ""
    rows = [
        ("model", f"{m.label}{' (random init)' if m.from_scratch else ''}{shape}, peft={cfg.peft.method}"),
        (
            "params",
            f"{human(params.total)} total, {human(params.trainable)} trainable "
            f"({params.trainable_pct:.2f} %), {m.dtype}",
        ),
        *data.rows(),
        (
            "batch",
            f"global {d.global_batch} = micro {d.micro_batch} x accum {cfg.grad_accum} x "
            f"{cfg.parallelism.world_size} rank(s); sequences <= {d.sequence_len} tokens",
        ),
        (
            "steps",
            f"{steps.total} optimizer steps ({steps.epochs:.2f} epochs of {steps.per_epoch}), "
            f"warmup {steps.warmup}, {cfg.scheduler.name} schedule",
        ),
        (
            "optimizer",
            f"{cfg.optimizer.name} lr={cfg.optimizer.lr:g} weight_decay={cfg.optimizer.weight_decay:g}",
        ),
        (
            "hardware",
            f"{'gpu' if cfg.on_gpu else 'cpu'} ({cfg.hardware.cpu_cores} cores, threads "
            f"{cfg.trainer.threads}), precision {cfg.trainer.precision}, strategy {cfg.parallelism.strategy}",
        ),
        ("outputs", str(Path(cfg.run.dir))),
        ("tracking", tracking),
    ]
    panel(f"trainer: run {cfg.run.experiment}/{cfg.run.name}", rows, log_it=True)


def print_end(
    cfg: TrainConfig,
    metrics: dict[str, float],
    baseline: dict[str, float],
    seconds: float,
    tokens_per_s: float,
    paths: dict[str, str],
) -> None:
    def pair(key: str, fmt: str) -> str:
        start = f"{baseline[key]:{fmt}} -> " if key in baseline else ""
        return f"{start}{metrics[key]:{fmt}}" if key in metrics else "n/a"

    rows = [
        ("val loss", pair("val/loss", ".4f")),
        ("exact match", pair("val/exact_match", ".1%")),
        ("train loss", f"{metrics['train/loss']:.4f}" if "train/loss" in metrics else "n/a"),
        ("time", f"{seconds:.1f} s training, {tokens_per_s:,.0f} tokens/s"),
        *paths.items(),
    ]
    panel(f"trainer: finished {cfg.run.experiment}/{cfg.run.name}", rows, log_it=True)
