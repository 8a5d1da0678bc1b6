"""How much does the launcher cost? Training-step throughput and startup, each against a bare baseline.

Why: the launcher wraps a plain Hugging Face model in Lightning, logging and callbacks. This shows what
that costs against the same work done by hand, on the same machine in the same run, so the ratios carry
across machines (absolute numbers do not).

1. Step throughput: non-padding tokens/s of `CausalLMModule` under `lightning.Trainer` vs a hand-written
   PyTorch loop, same model config, same seed, same pre-made batches, same optimizer/scheduler/clipping.
   The first --warmup steps are excluded; the two alternate --repeats times; medians over repeats.
2. Startup: wall time of the whole CLI (`python -m trainer`, one optimizer step, no tracker, no
   validation, no checkpoints, no export) vs `python -c "import torch, lightning, transformers"`.

Figures and ratios only, never pass/fail. Run: .venv/bin/python benchmarks/train_throughput.py (see README).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from trainer.boundary import compose
from trainer.config import TrainConfig
from trainer.data.collate import model_inputs
from trainer.data.datamodule import InstructionDataModule
from trainer.models.build import build_model, hf_config, load_tokenizer
from trainer.models.optim import build_optimizer, build_scheduler
from trainer.models.scoring import token_loss
from trainer.parallel import for_config
from trainer.training.module import CausalLMModule

ROOT = Path(__file__).resolve().parents[1]
Batch = dict[str, torch.Tensor]
# No tracker, progress bar, validation, checkpoints or export: only training is left to time.
QUIET = (
    "tracker=none trainer.progress_bar=false trainer.val_every=disable trainer.val_at_start=false"
    " data.validation=null"
    " trainer.checkpoint_every=disable trainer.save_last=false trainer.export_model=false"
).split()


def load_config(run_dir: str, steps: int) -> TrainConfig:
    """The same compose -> validate path as the CLI, with everything that writes or validates off."""
    return compose([f"run.dir={run_dir}", f"trainer.max_steps={steps}", *QUIET], "benchmark").cfg


def steady_rates(stamps: list[float], batches: list[Batch], warmup: int) -> tuple[float, float]:
    """Tokens/s over steps warmup+1 .. N-1: all tokens over all time, and the median of per-step rates.

    The first is the honest throughput; the second shrugs off bursts of other work on the same cores.
    """
    tokens = [int(b["real_tokens"]) for b in batches]
    per_step = [tokens[i] / (stamps[i] - stamps[i - 1]) for i in range(warmup + 1, len(stamps))]
    return sum(tokens[warmup + 1 :]) / (stamps[-1] - stamps[warmup]), statistics.median(per_step)


class StepClock(L.Callback):
    """Records the time at the end of every training batch, and the first loss (a same-model check)."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.first_loss: float | None = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.stamps.append(time.perf_counter())
        if self.first_loss is None:
            self.first_loss = float(outputs["loss"])


def run_ours(cfg: TrainConfig, model_config: Any, batches: list[Batch], run_dir: str) -> tuple[list, float]:
    torch.manual_seed(cfg.run.seed)
    module = CausalLMModule(cfg, model_config, len(batches), for_config(cfg))
    clock = StepClock()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=len(batches),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        gradient_clip_val=cfg.trainer.gradient_clip,
        callbacks=[clock],
        default_root_dir=run_dir,
    )
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None))
    assert clock.first_loss is not None and len(clock.stamps) == len(batches)
    return clock.stamps, clock.first_loss


def run_baseline(cfg: TrainConfig, model_config: Any, batches: list[Batch]) -> tuple[list, float]:
    torch.manual_seed(cfg.run.seed)
    model = build_model(cfg.model, model_config)
    model.train()
    optimizer = build_optimizer(model, cfg.optimizer)
    scheduler = build_scheduler(optimizer, cfg.scheduler, len(batches))
    clip = cfg.trainer.gradient_clip
    stamps: list[float] = []
    first_loss = float("nan")
    for step, batch in enumerate(batches):
        logits = model(**model_inputs(batch), use_cache=False).logits
        total, count = token_loss(logits, batch["labels"])
        loss = total / count.clamp(min=1)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        stamps.append(time.perf_counter())
        if step == 0:
            first_loss = float(loss.detach())
    return stamps, first_loss


def bench_steps(steps: int, repeats: int, warmup: int) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="bench-train-") as run_dir:
        cfg = load_config(run_dir, steps)
        tok = load_tokenizer(cfg.model)
        model_config = hf_config(cfg.model, tok)
        data = InstructionDataModule(cfg.data, tok, cfg.run.seed)
        data.prepare()
        batches = list(islice(cycle(data.train_dataloader()), steps))
        n_tokens = sum(int(b["real_tokens"]) for b in batches)
        n_params = sum(p.numel() for p in build_model(cfg.model, model_config).parameters())
        print(
            f"model: {n_params:,} params"
            f", {steps} batches of {cfg.data.micro_batch}, {n_tokens:,} non-padding tokens,"
            f" torch threads={torch.get_num_threads()}, warm-up steps excluded={warmup}"
        )
        rates: dict[str, list[tuple[float, float]]] = {"baseline": [], "ours": []}
        for r in range(repeats):
            stamps, base_loss = run_baseline(cfg, model_config, batches)
            rates["baseline"].append(steady_rates(stamps, batches, warmup))
            stamps, our_loss = run_ours(cfg, model_config, batches, run_dir)
            rates["ours"].append(steady_rates(stamps, batches, warmup))
            (bt, bm), (ot, om) = rates["baseline"][-1], rates["ours"][-1]
            print(
                f"  repeat {r + 1}: baseline {bt:,.0f} tok/s (per-step median {bm:,.0f}),"
                f" ours {ot:,.0f} tok/s (per-step median {om:,.0f});"
                f" first-step loss baseline {base_loss:.5f}, ours {our_loss:.5f}"
            )
    rows = []
    for kind, label in ((0, "all tokens / all time"), (1, "median of per-step rates")):
        base = statistics.median(x[kind] for x in rates["baseline"])
        ours = statistics.median(x[kind] for x in rates["ours"])
        rows += [
            (f"step tok/s, hand-written PyTorch loop ({label})", f"{base:,.0f}"),
            (f"step tok/s, Lightning CausalLMModule ({label})", f"{ours:,.0f}"),
            (f"  ratio ours / baseline ({label})", f"{ours / base:.3f}"),
        ]
    return rows


def wall(cmd: list[str], env: dict[str, str], cwd: Path, expect: int = 0) -> float:
    """Seconds `cmd` takes; it must exit with `expect`."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != expect:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds


def bench_startup(repeats: int) -> list[tuple[str, str]]:
    """Whole commands: a one-step run against the bare imports, and how soon mistakes are reported (a bad
    config, an unreachable hub id: both before torch loads)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("TRAINER_DEBUG", None)
    offline = {k: v for k, v in env.items() if k != "HF_HUB_OFFLINE"} | {"HF_ENDPOINT": "http://127.0.0.1:9"}
    bare = [sys.executable, "-c", "import torch, lightning, transformers"]
    trainer = [sys.executable, "-m", "trainer"]
    imports, cli, bad, hub = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as out:
        overrides = [*QUIET, "trainer.max_steps=1"]
        overrides.append(f"run.output_root={out}")
        for _ in range(repeats):
            imports.append(wall(bare, env, ROOT))
            cli.append(wall([*trainer, *overrides], env, ROOT))
            bad.append(wall([*trainer, "optimizer.lr=abc", f"run.output_root={out}"], env, ROOT, expect=2))
            hub.append(wall([*trainer, "model=llama", f"run.output_root={out}"], offline, ROOT, expect=2))
    a, b = min(imports), min(cli)
    return [
        ('startup (a): python -c "import torch, lightning, transformers" (min wall s)', f"{a:.2f}"),
        ("startup (b): python -m trainer, whole run of 1 optimizer step (min wall s)", f"{b:.2f}"),
        ("ratio (b) / (a)", f"{b / a:.2f}"),
        ("a bad config (optimizer.lr=abc) reported, exit 2 (min wall s)", f"{min(bad):.2f}"),
        ("an unreachable hub id (model=llama, no hub) reported, exit 2 (min wall s)", f"{min(hub):.2f}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120, help="batches per timed run")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each side")
    parser.add_argument("--warmup", type=int, default=10, help="first steps left out of the rate")
    parser.add_argument("--skip-startup", action="store_true", help="only measure step throughput")
    parser.add_argument(
        "--smoke", action="store_true", help="smallest size (CI): 8 steps, 2 warm-up, 1 repeat"
    )
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.warmup, args.repeats = 8, 2, 1
    if args.steps <= args.warmup + 1:
        parser.error("--steps must be larger than --warmup + 1")
    for pattern in (".*does not have many workers.*", ".*LeafSpec.*", ".*validation_step.*"):
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # "GPU available: False" etc.

    # Other processes on the same cores (a test run, say) skew both sides unevenly: show the load. This
    # run itself keeps about one to two cores busy, so the value at the end is high even on an idle machine.
    load_before = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, 1-min load average at start: {load_before:.2f} (other work here)")
    rows = bench_steps(args.steps, args.repeats, args.warmup)
    if not args.skip_startup:
        rows += bench_startup(args.repeats)
    load = f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"
    rows.append(("1-min load average at start / at end (end includes this run)", load))
    width = max(len(name) for name, _ in rows)
    print(f"\n{'measure'.ljust(width)}  value\n{'-' * width}  -----")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
