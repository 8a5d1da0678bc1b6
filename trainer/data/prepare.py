"""Read, encode, mix, split (and pack) the data once, without Lightning: the trainer, the dry run and
`trainer.preprocess` share it.

Order, and why:
1. each dataset is read and encoded with its own format (cached as a whole, see cache.py);
2. validation is held out from the encoded training examples, before any dataset is up-sampled,
   and a held-out example whose content also occurs among the training examples goes back to
   training (duplicates.py), so no example is both trained on and validated on;
3. `weight` / `count` then size each dataset's training part, with a seed per dataset;
4. packing (when on) groups the final training examples into rows; it is cheap and not cached.
Every step is a pure function of the inputs and the seed, so all ranks get the same sets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer.config.data import DataConfig
from trainer.config.dataset import DataKind, DatasetConfig
from trainer.console import progress
from trainer.data import cache
from trainer.data.collate import (
    Collator,
    KtoCollator,
    PackedCollator,
    PairCollator,
    preference_collator,
)
from trainer.data.dropped import check_drops
from trainer.data.duplicates import count_duplicates, count_in, digests, keep_in_training
from trainer.data.encoded import EncodeOptions, EncodeStats, TokenizedSet
from trainer.data.packing import PackedSet
from trainer.data.parallel_encode import encode_records
from trainer.data.summary import DataSummary
from trainer.errors import UserError

log = logging.getLogger("trainer")


@dataclass(frozen=True)
class PreparedData:
    """Everything the loaders need, and the one place that knows whether training rows are packed."""

    examples: TokenizedSet  # the training examples, unpacked (what `trainer preprocess --debug` shows)
    val: TokenizedSet  # validation stays unpacked, so exact match is per example
    summary: DataSummary
    packed: PackedSet | None = None  # rows of whole examples when data.packing
    kind: DataKind = "sft"  # sft examples, preference pairs or kto examples: what the collators make

    @property
    def train_items(self) -> Sequence[dict[str, Any]]:
        """What the training loader yields items of: packed rows, or the examples."""
        return self.packed if self.packed is not None else self.examples

    def collator(self, pad_id: int, train: bool) -> Collator | PackedCollator | PairCollator | KtoCollator:
        """Pairs and KTO examples by their own collators (training and validation alike); otherwise packed
        rows for training when packed, padded examples else (validation always)."""
        if self.kind != "sft":
            return preference_collator(self.kind, pad_id, self.summary.sequence_len)
        if train and self.packed is not None:
            return PackedCollator(pad_id)
        return Collator(pad_id)


def encode_options(cfg: DataConfig, tokenizer: Any) -> EncodeOptions:
    from trainer.data.chat_templates import resolve_chat_template
    from trainer.data.formats.oversize import longest_token_chars

    return EncodeOptions(
        sequence_len=cfg.sequence_len,
        too_long=cfg.too_long,
        train_on_inputs=cfg.train_on_inputs,
        chat_template=resolve_chat_template(cfg.chat_template, tokenizer),
        longest_token_chars=longest_token_chars(tokenizer),
    )


LARGE = 20_000  # records from which encoding takes long enough to print a line before and after


def _encode_all(
    group: str, datasets: dict[str, DatasetConfig], tokenizer: Any, opts: EncodeOptions, num_proc: int | None
) -> tuple[dict[str, TokenizedSet], dict[str, EncodeStats], dict[str, list[bytes]]]:
    """Per dataset: its examples, its counts (exact duplicates included) and one hash per example."""
    from trainer.data.sources import load_records

    sets, stats, hashes = {}, {}, {}
    for name, ds in datasets.items():
        key = f"data.{group}.{name}"
        records = load_records(ds, key)
        started = time.perf_counter()
        if len(records) >= LARGE:  # minutes of encoding: say so where no progress bar shows
            progress(f"encoding {key}: {len(records):,} records ...")
        examples, stats[name] = encode_records(records, ds.format, tokenizer, opts, key, num_proc)
        if len(records) >= LARGE:
            progress(f"encoded {key}: {len(examples):,} examples in {time.perf_counter() - started:.1f} s")
        if not examples:
            raise UserError(
                f"{key}: no example is left after encoding ({stats[name].read:,} read; dropped: "
                f"{stats[name].describe_drops()})",
                hint="raise data.sequence_len or set data.too_long=truncate"
                if set(stats[name].dropped) == {"too_long"}
                else f"check that {key}.format matches the records (its type and field names)",
            )
        sets[name] = TokenizedSet.from_examples(examples)
        hashes[name] = digests(sets[name])
        stats[name].duplicates = count_duplicates(hashes[name])
    return sets, stats, hashes


def _sized(n: int, ds: DatasetConfig) -> int:
    if ds.count is not None:
        return ds.count
    if ds.weight is not None:
        return max(1, round(ds.weight * n))
    return n


def resample(n: int, target: int, rng: np.random.Generator) -> np.ndarray:
    """`target` indices into range(n): whole copies, then a seeded sample without replacement."""
    whole, rest = divmod(target, n)
    picked = np.concatenate([np.tile(np.arange(n), whole), np.sort(rng.permutation(n)[:rest])])
    return picked.astype(np.int64)


def _val_setting(cfg: DataConfig) -> tuple[str, float]:
    """The key and value that size the held-out part, for messages."""
    return ("data.val_count", cfg.val_count) if cfg.val_count else ("data.val_fraction", cfg.val_fraction)


def hold_out(sizes: list[int], cfg: DataConfig, seed: int) -> list[np.ndarray]:
    """Per dataset, a boolean mask of the examples held out for validation (val_count / val_fraction of
    all of them together, chosen by one seeded permutation)."""
    total = sum(sizes)
    n_val = cfg.val_count or int(round(cfg.val_fraction * total))
    masks = [np.zeros(n, dtype=bool) for n in sizes]
    if n_val == 0:
        return masks
    if n_val >= total:
        key, value = _val_setting(cfg)
        raise UserError(
            f"{key}={value} holds out {n_val:,} of the {total:,} training examples, leaving none to train on",
            hint=f"use a smaller {key}, or separate data.validation datasets",
        )
    chosen = np.random.default_rng(seed).permutation(total)[:n_val]
    flat = np.zeros(total, dtype=bool)
    flat[chosen] = True
    start = 0
    for i, n in enumerate(sizes):
        masks[i] = flat[start : start + n]
        start += n
    return masks


def _split(
    sets: dict[str, TokenizedSet],
    hashes: dict[str, list[bytes]],
    stats: dict[str, EncodeStats],
    cfg: DataConfig,
    seed: int,
) -> list[np.ndarray]:
    """The held-out masks, less the picks that duplicate a training example (counted per dataset)."""
    names = list(sets)
    chosen = hold_out([len(sets[n]) for n in names], cfg, seed)
    if not any(m.any() for m in chosen):
        return chosen
    masks = keep_in_training(chosen, [hashes[n] for n in names])
    for name, before, after in zip(names, chosen, masks, strict=True):
        stats[name].kept_in_training = int(before.sum() - after.sum())
    if not any(m.any() for m in masks):
        key, value = _val_setting(cfg)
        raise UserError(
            f"{key}={value}: every held-out example also occurs in the training data (exact duplicates), "
            "so nothing is left to validate on",
            hint="remove the duplicate records from the data, or use separate data.validation datasets",
        )
    return masks


def _mix(
    sets: dict[str, TokenizedSet],
    masks: list[np.ndarray],
    datasets: dict[str, DatasetConfig],
    seed: int,
) -> tuple[TokenizedSet, TokenizedSet, dict[str, int]]:
    names = list(sets)
    train_parts, val_parts, mixed = [], [], {}
    for i, (name, held) in enumerate(zip(names, masks, strict=True)):
        keep = np.flatnonzero(~held)
        if held.any():
            val_parts.append(sets[name].select(np.flatnonzero(held)))
        target = _sized(len(keep), datasets[name])
        rng = np.random.default_rng([seed, i])
        train_parts.append(sets[name].select(keep[resample(len(keep), target, rng)]))
        mixed[name] = target
    return TokenizedSet.concat(train_parts), TokenizedSet.concat(val_parts), mixed


def _cache_parts(cfg: DataConfig, tokenizer: Any, opts: EncodeOptions, seed: int) -> dict[str, Any]:
    from trainer.data.sources import fingerprint

    def described(group: str, datasets: dict[str, DatasetConfig]) -> dict[str, Any]:
        return {
            # The path itself is not in the key (the content is): a copied file hits.
            name: {
                "config": ds.model_dump(mode="json", exclude={"path"}),
                "content": fingerprint(ds, f"data.{group}.{name}"),
            }
            for name, ds in datasets.items()
        }

    every = [ds for _, by_name in cfg.groups() for ds in by_name.values()]
    sized = any(ds.weight is not None or ds.count is not None for ds in every)
    seeded = cfg.val_fraction > 0 or cfg.val_count > 0 or sized
    return {
        "datasets": described("datasets", cfg.datasets),
        "validation": described("validation", cfg.validation or {}),
        "tokenizer": cache.tokenizer_fingerprint(tokenizer),
        "options": {
            "sequence_len": opts.sequence_len,
            "too_long": opts.too_long,
            "train_on_inputs": opts.train_on_inputs,
            "chat_template": opts.chat_template,
        },
        "val_fraction": cfg.val_fraction,
        "val_count": cfg.val_count,
        "seed": seed if seeded else None,  # a seed sweep does not rebuild data that the seed does not touch
    }


def _build(cfg: DataConfig, tokenizer: Any, opts: EncodeOptions, seed: int):
    sets, train_stats, hashes = _encode_all("datasets", cfg.datasets, tokenizer, opts, cfg.num_proc)
    masks = _split(sets, hashes, train_stats, cfg, seed)
    train, val, mixed = _mix(sets, masks, cfg.datasets, seed)
    val_stats: dict[str, EncodeStats] = {}
    if cfg.validation:
        val_sets, val_stats, val_hashes = _encode_all(
            "validation", cfg.validation, tokenizer, opts, cfg.num_proc
        )
        trained = {h for hs in hashes.values() for h in hs}  # no hold-out here: every training example
        parts = []
        for i, (name, s) in enumerate(val_sets.items()):
            val_stats[name].also_in_training = count_in(val_hashes[name], trained)
            rng = np.random.default_rng([seed, 1000 + i])  # apart from the training datasets' streams
            parts.append(s.select(resample(len(s), _sized(len(s), cfg.validation[name]), rng)))
        val = TokenizedSet.concat(parts)
    return train, val, {"train": train_stats, "val": val_stats}, mixed


def prepare_data(cfg: DataConfig, tokenizer: Any, seed: int, *, write_cache: bool = True) -> PreparedData:
    """Everything the loaders need, from the cache when its key matches; `seed` orders split and mix.
    `write_cache=False` (the dry run) reads a matching entry but never writes one."""
    started = time.perf_counter()
    opts = encode_options(cfg, tokenizer)
    mixed: dict[str, int] = {}
    if cfg.cache:
        root = cache.cache_root(cfg.cache_dir)
        parts = _cache_parts(cfg, tokenizer, opts, seed)
        key = cache.make_key(parts)
        hit = cache.load(root, key)
        if hit is not None:
            train, val, stats, mixed, status = hit.train, hit.val, hit.stats, hit.mixed, f"hit {hit.folder}"
        else:
            if write_cache:  # probed before tokenizing, not found unwritable once all of it is done
                cache.require_writable(cfg.cache_dir)
            train, val, stats, mixed = _build(cfg, tokenizer, opts, seed)
            if write_cache:
                status = f"built {cache.store(root, key, train, val, stats, mixed, parts)}"
            else:
                status = "miss (not written by a dry run)"
    else:
        train, val, stats, mixed = _build(cfg, tokenizer, opts, seed)
        key, status = None, "off"
    summary = DataSummary(
        train=stats["train"],
        val=stats["val"],
        train_examples=len(train),
        val_examples=len(val),
        mixed=mixed,
        cache=status,
        key=key,
        sequence_len=cfg.sequence_len,
        unit="pairs" if cfg.kind == "preference" else "examples",
    )
    for line in check_drops(summary, cfg.max_dropped_fraction) + summary.warnings():
        log.warning(line)
    packed = PackedSet(train, cfg.sequence_len) if cfg.packing else None
    if cfg.overfit_batches:
        train, packed, val = _overfit(train, packed, cfg)
        summary.overfit = len(packed if packed is not None else train)
        summary.train_examples = len(train)
    if packed is not None:
        summary.packed_rows, summary.packing_efficiency = len(packed), packed.efficiency
    summary.seconds = time.perf_counter() - started
    return PreparedData(train, val, summary, packed, cfg.kind)


def _overfit(
    examples: TokenizedSet, packed: PackedSet | None, cfg: DataConfig
) -> tuple[TokenizedSet, PackedSet | None, TokenizedSet]:
    """`data.overfit_batches`: the first N global batches of training items, and their examples as the
    validation set (a model that works learns them by heart)."""
    n = cfg.overfit_batches * cfg.global_batch
    items, kind = (packed, "rows") if packed is not None else (examples, "examples")
    if n > len(items):
        raise UserError(
            f"data.overfit_batches={cfg.overfit_batches} needs {n:,} training {kind} "
            f"({cfg.overfit_batches} x data.global_batch {cfg.global_batch}); the data has {len(items):,}",
            hint="use a smaller data.overfit_batches or data.global_batch",
        )
    if packed is None:
        chosen = examples.select(np.arange(n, dtype=np.int64))
        return chosen, None, chosen
    rows = packed.head(n)
    return examples, rows, examples.select(rows.members())
