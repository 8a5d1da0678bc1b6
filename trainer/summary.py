"""One-screen summaries printed at the start and the end of a run (and written to the log file)."""

from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from trainer.config import TrainConfig
from trainer.data.prepare import DataSummary
from trainer.models.accounting import ParamCounts
from trainer.steps import StepPlan

log = logging.getLogger("trainer")


def _human(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


def _panel(title: str, rows: list[tuple[str, str]]) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    for k, v in rows:
        grid.add_row(k, v)
    Console(stderr=False, soft_wrap=False).print(Panel(grid, title=title, title_align="left", expand=False))
    log.info("%s\n%s", title, "\n".join(f"  {k:<10} {v}" for k, v in rows))


def data_rows(cfg: TrainConfig, data: DataSummary) -> list[tuple[str, str]]:
    """What was read, kept and dropped per dataset (nothing is lost silently), the mix, packing, cache."""
    rows = []
    for group, by_name in (("train", data.train), ("val", data.val)):
        for name, s in by_name.items():
            extra = f", {s.truncated:,} truncated" if s.truncated else ""
            extra += f", {s.chunked:,} split into chunks" if s.chunked else ""
            rows.append(
                (
                    "data" if not rows else "",
                    f"{group} {name}: {s.kept:,} kept of {s.read:,} read ({_human(s.tokens)} tokens); "
                    f"dropped: {s.describe_drops()}{extra}",
                )
            )
    held = f" ({data.val_examples:,} held out for validation)" if data.val_examples and not data.val else ""
    mix = ", ".join(f"{n} {k:,}" for n, k in data.mixed.items()) if len(data.mixed) > 1 else ""
    rows.append(("", f"training set {data.train_examples:,} examples{held}" + (f": {mix}" if mix else "")))
    if data.packed_rows is not None:
        rows.append(
            (
                "packing",
                f"{data.packed_rows:,} rows of {cfg.data.sequence_len} tokens, "
                f"{data.packing_efficiency:.2%} of token slots are real tokens",
            )
        )
    rows.append(("cache", f"{data.cache} ({data.seconds:.2f} s)"))
    return rows


def print_start(
    cfg: TrainConfig,
    params: ParamCounts,
    data: DataSummary,
    steps: StepPlan,
    device: str,
    tracking: str | None,
) -> None:
    m, d = cfg.model, cfg.data
    source = m.name_or_path or "built-in tiny llama"
    arch = m.architecture
    shape = f", {arch.num_hidden_layers} layers x {arch.hidden_size}" if arch and m.from_scratch else ""
    rows = [
        ("model", f"{source}{' (random init)' if m.from_scratch else ''}{shape}, peft={cfg.peft.method}"),
        (
            "params",
            f"{_human(params.total)} total, {_human(params.trainable)} trainable "
            f"({params.trainable_pct:.2f} %), {m.dtype}",
        ),
        *data_rows(cfg, data),
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
        ("hardware", f"{device}, precision {cfg.trainer.precision}, strategy {cfg.parallelism.strategy}"),
        ("outputs", str(Path(cfg.run.dir))),
        ("tracking", tracking or "off (tracker=none)"),
    ]
    _panel(f"trainer: run {cfg.run.experiment}/{cfg.run.name}", rows)


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
    _panel(f"trainer: finished {cfg.run.experiment}/{cfg.run.name}", rows)
