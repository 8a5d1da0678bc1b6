"""The two training loops the GPU check times on the same batches: the project's and a hand-written one.

Why: the launcher's overhead is the ratio of their rates; keeping both beside each other makes it easy
to see that they do the same work (model, optimizer, scheduler, loss, clipping, precision). Packed rows
of random documents stand in for data, so the device needs no datasets package and no files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from trainer.config import TrainConfig
from trainer.data.collate import PackedCollator, model_inputs, padded
from trainer.data.encoded import IGNORE, TokenizedSet
from trainer.data.packing import PackedSet
from trainer.models.build import build_model, load_tokenizer
from trainer.models.optim import build_optimizer, build_scheduler
from trainer.models.scoring import token_loss
from trainer.parallel import for_config
from trainer.training.module import CausalLMModule

Batch = dict[str, torch.Tensor]


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def packed_batches(n: int, rows: int, seq: int, vocab: int, seed: int = 0) -> list[Batch]:
    """`n` micro batches of packed rows of random documents (32 to seq/2 tokens, the last one cut to fit),
    assembled by the project's PackedCollator: position ids restart at every document."""
    rng = np.random.default_rng(seed)
    collate = PackedCollator(pad_id=0)
    batches = []
    for _ in range(n):
        packed = []
        for _ in range(rows):
            lengths: list[int] = []
            while sum(lengths) < seq:
                lengths.append(min(int(rng.integers(min(32, seq // 4), seq // 2)), seq - sum(lengths)))
            ids = rng.integers(3, vocab, seq)
            labels = ids.copy()
            labels[np.cumsum([0, *lengths[:-1]])] = IGNORE  # no document predicts its first token
            positions = np.concatenate([np.arange(k) for k in lengths])
            packed.append({"input_ids": ids, "labels": labels, "position_ids": positions})
        batches.append(collate(packed))
    return batches


def random_examples(lengths: list[int], vocab: int, seed: int = 0) -> TokenizedSet:
    """Examples of these lengths with random tokens, each one's first token not a label."""
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(3, vocab, int(offsets[-1])).astype(np.int32)
    labels = ids.copy()
    labels[offsets[:-1]] = IGNORE
    return TokenizedSet(ids, labels, offsets)


def packed_and_padded(
    examples: TokenizedSet, rows: int, seq: int, steps: int, seed: int = 0
) -> tuple[list[Batch], list[Batch]]:
    """`steps` batches of `rows` packed rows (the project's PackedSet and PackedCollator), and `steps`
    padded batches (the project's `padded`) of as many examples per step as a packed batch holds on
    average, in seeded random order: the same data, each side batched as the launcher would."""
    rng = np.random.default_rng(seed)
    packed_set = PackedSet(examples, seq)
    collate = PackedCollator(pad_id=0)
    order = np.resize(rng.permutation(len(packed_set)), rows * steps)  # repeated when too few rows
    packed = [collate([packed_set[int(i)] for i in order[k * rows : (k + 1) * rows]]) for k in range(steps)]
    per_step = max(1, round(rows * len(examples) / len(packed_set)))
    shuffled = np.resize(rng.permutation(len(examples)), per_step * steps)
    chunks = [shuffled[k * per_step : (k + 1) * per_step] for k in range(steps)]
    return packed, [padded([examples[int(i)] for i in chunk], 0) for chunk in chunks]


class StepClock(L.Callback):
    """The time at the end of every training batch (after a device sync), and the first loss."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.first_loss: float | None = None

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, idx: int) -> None:
        sync()
        self.stamps.append(time.perf_counter())
        if self.first_loss is None:
            self.first_loss = float(outputs["loss"])


def run_ours(cfg: TrainConfig, model_config: Any, batches: list[Batch]) -> tuple[list[float], float]:
    """The project's path: CausalLMModule under lightning.Trainer with the config's strategy/precision."""
    torch.manual_seed(cfg.run.seed)
    parallel = for_config(cfg)
    module = CausalLMModule(cfg, model_config, len(batches), parallel)
    clock = StepClock()
    trainer = L.Trainer(
        accelerator="gpu" if cfg.on_gpu else "cpu",
        devices=1,
        strategy=parallel.strategy(),
        precision=cfg.precision,
        max_steps=len(batches),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        gradient_clip_val=cfg.trainer.gradient_clip,
        callbacks=[clock],
        default_root_dir=os.environ.get("TMPDIR", "/tmp"),
        inference_mode=False,
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    return clock.stamps, float(clock.first_loss or "nan")


def run_baseline(cfg: TrainConfig, model_config: Any, batches: list[Batch]) -> tuple[list[float], float]:
    """The same step by hand: model, optimizer, scheduler, loss, clipping, autocast as Lightning's
    bf16-mixed does it (bf16-true: the weights cast to bf16)."""
    torch.manual_seed(cfg.run.seed)
    device = torch.device("cuda" if cfg.on_gpu else "cpu")
    with device:  # built in place, as Lightning's configure_model builds ours on the device
        model = build_model(cfg.model, model_config)
    if cfg.precision == "bf16-true":
        model = model.to(torch.bfloat16)
    model.train()
    optimizer = build_optimizer(model, cfg.optimizer, on_gpu=cfg.on_gpu)
    scheduler = build_scheduler(optimizer, cfg.scheduler, len(batches))
    autocast = cfg.precision == "bf16-mixed"
    stamps, first = [], float("nan")
    for step, cpu_batch in enumerate(batches):
        batch = {k: v.to(device, non_blocking=True) for k, v in cpu_batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(**model_inputs(batch), use_cache=False).logits
            total, count = token_loss(logits, batch["labels"])
            loss = total / count.clamp(min=1)
        loss.backward()
        if cfg.trainer.gradient_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.gradient_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        stamps.append(time.perf_counter())
        if step == 0:
            first = float(loss.detach())
    return stamps, first


def rate(stamps: list[float], batches: list[Batch], warmup: int) -> float:
    """Non-padding tokens/s from the end of step `warmup` to the end of the last step."""
    tokens = sum(int(b["real_tokens"]) for b in batches[warmup:])
    return tokens / (stamps[-1] - stamps[warmup - 1])


def save_pretrained(cfg: TrainConfig, model_config: Any, folder: Path, dtype: torch.dtype) -> None:
    """Save a random-init model of `model_config` with the config's tokenizer: a pretrained folder
    without the hub (on the GPU when there is one: a 1B model is built there in a second)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with device:
        model = build_model(cfg.model, model_config).to(dtype)
    model.save_pretrained(folder)
    load_tokenizer(cfg.model).save_pretrained(folder)
    del model
