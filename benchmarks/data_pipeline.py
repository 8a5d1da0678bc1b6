"""What do packing and the tokenized-data cache buy? Efficiency and throughput of the data pipeline.

Why: packing (`data.packing`) and the cache (`data.cache`) exist to save padding and start-up time. This
measures both against the unpacked / uncached path in the same run, so the ratios carry across machines.

1. Packing efficiency: real tokens / token slots of `PackedSet` on the prepared training set, per
   sequence_len, next to micro batches of 8 random examples padded to their longest, and to a lower
   bound on the number of rows.
2. Training throughput: non-padding tokens/s of the built-in tiny model (fp32, CPU, one torch thread
   unless --threads, AdamW, clipping) on padded batches vs packed rows of the same data (forward +
   backward + optimizer step); the two sides alternate --repeats times; medians over repeats.
3. Tokenization: examples/s and tokens/s of `prepare_data` with the cache off, best of --repeats.
4. Cache: `prepare_data` into a fresh cache folder (build), then again (hit): the hit / the build.

Data under ../shared/data is optional: rows that need it are skipped with a note. Figures and ratios
only, never pass/fail. Run: .venv/bin/python benchmarks/data_pipeline.py (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ALPACA, GLAIVE = SHARED / "alpaca_en_demo.json", SHARED / "glaive_toolcall_en_demo.json"
LLAMA_MODEL = SHARED / "llama2-tokenizer.model"
ALPACA_FMT = {"type": "alpaca", "template": "alpaca"}
GLAIVE_FMT = {"type": "chat", "field": "conversations"}


def table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Print a small table: names left-aligned, figures right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))  # noqa: B905


def load_config(run_dir: str) -> Any:
    """The default config, through the same compose -> validate path as the CLI."""
    from trainer.boundary import compose

    return compose([f"run.dir={run_dir}"], "benchmark").cfg


def llama_tokenizer() -> Any | None:
    """Llama 2's SentencePiece model through `LlamaTokenizer`, with BOS on as Llama 2 uses it (loaded from
    a bare tokenizer.model, transformers 5 leaves add_bos_token off); None with a note when absent."""
    missing = [str(LLAMA_MODEL)] if not LLAMA_MODEL.exists() else []
    missing += ["the sentencepiece package"] if importlib.util.find_spec("sentencepiece") is None else []
    if missing:
        print(f"  note: no {' and no '.join(missing)}: the Llama-2 rows are skipped")
        return None
    from transformers import LlamaTokenizer

    # The folder lives as long as the script: the cache fingerprints a tokenizer by its folder's files.
    folder = tempfile.mkdtemp(prefix="bench-llama-tok-")
    atexit.register(shutil.rmtree, folder, True)
    shutil.copy(LLAMA_MODEL, Path(folder) / "tokenizer.model")
    tok = LlamaTokenizer.from_pretrained(folder, add_bos_token=True)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def data_config(path: Path, fmt: dict, sequence_len: int) -> Any:
    from trainer.config.data import DataConfig

    ds = {path.stem: {"path": str(path), "format": fmt}}
    return DataConfig(datasets=ds, sequence_len=sequence_len, too_long="drop", cache=False)


def padded_efficiency(lengths: Any, batch: int = 8, shuffles: int = 20) -> float:
    """Real tokens / slots when seeded random micro batches of `batch` are padded to their longest."""
    import numpy as np

    real = slots = 0
    for seed in range(shuffles):
        shuffled = lengths[np.random.default_rng(seed).permutation(len(lengths))]
        for start in range(0, len(shuffled), batch):
            chunk = shuffled[start : start + batch]
            real, slots = real + int(chunk.sum()), slots + len(chunk) * int(chunk.max())
    return real / slots


def bench_packing(workloads: list[tuple[str, Any, Any, tuple[int, ...]]]) -> None:
    import numpy as np

    from trainer.data.prepare import prepare_data

    rows = []
    for name, base, tok, lens in workloads:
        for seq in lens:
            cfg = base.model_copy(update={"sequence_len": seq, "packing": True, "cache": False})
            data = prepare_data(cfg, tok, 1234)
            packed, lengths = data.packed, data.examples.lengths
            padded = padded_efficiency(lengths)
            # No packing needs fewer rows than: tokens / capacity; examples over half a row (one each);
            # examples / the most that fit in one row (the shortest ones).
            most = int(np.searchsorted(np.cumsum(np.sort(lengths)), seq, side="right"))
            over_half = int((lengths > seq // 2).sum())
            bound = max(-(-packed.real_tokens // seq), over_half, -(-len(lengths) // most))
            rows.append(
                (name, str(seq), f"{len(lengths):,}", f"{data.summary.train_total.dropped_total:,}")
                + (f"{packed.real_tokens:,}", f"{len(packed):,}", f"{bound:,}")
                + (f"{packed.efficiency:.2%}", f"{packed.real_tokens / (bound * seq):.2%}")
                + (f"{padded:.2%}", f"{packed.efficiency / padded:.2f}")
            )
    header = ("data / tokenizer", "seq_len", "examples", "dropped", "tokens", "rows", "min rows")
    header += ("packed", "bound", "padded x8", "packed/padded")
    table(
        "1. Packing efficiency: real tokens / token slots (goal: >= 99.50 % on alpaca at 2048)", header, rows
    )
    print(f"pack_bins on 50,000 lengths 10..1000 into rows of 2048: {_pack_seconds():.2f} s (best of 3)")


def _pack_seconds() -> float:
    import numpy as np

    from trainer.data.packing import pack_bins

    lengths = np.random.default_rng(0).integers(10, 1001, size=50_000)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        pack_bins(lengths, 2048)
        best = min(best, time.perf_counter() - started)
    return best


def batches_for(data: Any, per_step: int, count: int, seed: int, collate: Any) -> list[dict]:
    """`count` batches of `per_step` items of `data` in seeded random order (reshuffled when used up)."""
    import numpy as np

    order: list[int] = []
    rng = np.random.default_rng(seed)
    while len(order) < count * per_step:
        order += rng.permutation(len(data)).tolist()
    return [collate([data[i] for i in order[k * per_step : (k + 1) * per_step]]) for k in range(count)]


def train(cfg: Any, model_config: Any, batches: list[dict]) -> list[float]:
    """Forward + backward + clip + AdamW step over the batches; the time at the end of each step."""
    import torch

    from trainer.data.collate import model_inputs
    from trainer.models.build import build_model
    from trainer.models.optim import build_optimizer
    from trainer.models.scoring import token_loss

    torch.manual_seed(cfg.run.seed)
    model = build_model(cfg.model, model_config)
    model.train()
    optimizer = build_optimizer(model, cfg.optimizer)
    stamps = []
    for batch in batches:
        logits = model(**model_inputs(batch), use_cache=False).logits
        total, count = token_loss(logits, batch["labels"])
        (total / count.clamp(min=1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.gradient_clip or float("inf"))
        optimizer.step()
        optimizer.zero_grad()
        stamps.append(time.perf_counter())
    return stamps


def rates(stamps: list[float], tokens: list[int], warmup: int) -> tuple[float, float]:
    """Tokens/s after the warm-up: all tokens over all time, and the median of per-step rates."""
    per_step = [tokens[i] / (stamps[i] - stamps[i - 1]) for i in range(warmup, len(stamps))]
    return sum(tokens[warmup:]) / (stamps[-1] - stamps[warmup - 1]), statistics.median(per_step)


def bench_training(cfg: Any, tok: Any, workloads: list[tuple[str, Any, int]], args: Any) -> None:
    import torch

    from trainer.data.collate import Collator, PackedCollator
    from trainer.data.prepare import prepare_data
    from trainer.models.build import hf_config

    model_config = hf_config(cfg.model, tok)
    print(f"\n(torch threads={torch.get_num_threads()}; {args.warmup} warm-up + {args.steps} timed steps)")
    rows = []
    for name, data_cfg, rows_per_step in workloads:
        packed = prepare_data(data_cfg.model_copy(update={"packing": True, "cache": False}), tok, 1234).packed
        per_row = len(packed.examples) / len(packed)
        m = max(1, round(rows_per_step * per_row))
        n = args.warmup + args.steps
        padded_b = batches_for(packed.examples, m, n, 1, Collator(tok.pad_token_id))
        packed_b = batches_for(packed, rows_per_step, n, 1, PackedCollator(tok.pad_token_id))
        sides = {
            "padded": (padded_b, [int(b["real_tokens"]) for b in padded_b]),
            "packed": (packed_b, [int(b["real_tokens"]) for b in packed_b]),
        }
        got: dict[str, list[tuple[float, float]]] = {"padded": [], "packed": []}
        for r in range(args.repeats):
            for side, (batches, tokens) in sides.items():
                got[side].append(rates(train(cfg, model_config, batches), tokens, args.warmup))
            (pt, pm), (kt, km) = got["padded"][-1], got["packed"][-1]
            print(f"  {name} repeat {r + 1}: padded {pt:,.0f} tok/s (per-step median {pm:,.0f}),"
                  f" packed {kt:,.0f} tok/s (per-step median {km:,.0f})")  # fmt: skip
        med = {s: [statistics.median(x[k] for x in got[s]) for k in (0, 1)] for s in got}
        fill = {s: sum(sides[s][1]) / sum(b["input_ids"].numel() for b in sides[s][0]) for s in sides}
        for kind, label in ((0, "all tokens / all time"), (1, "median of per-step rates")):
            rows.append(
                (f"{name} @{data_cfg.sequence_len} ({label})", f"{m} ex", f"{rows_per_step} rows")
                + (f"{fill['padded']:.1%}", f"{fill['packed']:.1%}")
                + (f"{med['padded'][kind]:,.0f}", f"{med['packed'][kind]:,.0f}")
                + (f"{med['packed'][kind] / med['padded'][kind]:.2f}",)
            )
    header = ("data (rate)", "padded batch", "packed batch", "pad fill", "pack fill")
    header += ("padded tok/s", "packed tok/s", "packed/padded")
    table("2. Training throughput, non-padding tokens/s (medians over repeats)", header, rows)


def bench_tokenize(workloads: list[tuple[str, Any, Any]], repeats: int) -> None:
    from trainer.data.prepare import prepare_data

    rows = []
    for name, data_cfg, tok in workloads:
        cfg = data_cfg.model_copy(update={"cache": False, "packing": False})
        runs = [prepare_data(cfg, tok, 1234).summary for _ in range(repeats)]
        best = min(runs, key=lambda s: s.seconds)
        stats = best.train_total
        for part in best.val.values():  # tiny_tasks has a validation file: it is encoded too
            stats = stats.merge(part)
        rows.append(
            (name, f"{stats.read:,}", f"{stats.tokens:,}", f"{stats.dropped_total:,}", f"{best.seconds:.2f}")
            + (f"{stats.read / best.seconds:,.0f}", f"{stats.tokens / best.seconds:,.0f}")
        )
    header = ("data / tokenizer", "examples", "tokens kept", "dropped", "best s", "examples/s", "tokens/s")
    table("3. Tokenization throughput: prepare_data, cache off (best of repeats)", header, rows)


def bench_cache(workloads: list[tuple[str, Any, Any]], repeats: int) -> None:
    from trainer.data.prepare import prepare_data

    rows = []
    for name, data_cfg, tok in workloads:
        built, hit = [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(prefix="bench-data-cache-") as folder:
                cfg = data_cfg.model_copy(update={"cache": True, "cache_dir": folder, "packing": False})
                first, second = prepare_data(cfg, tok, 1234).summary, prepare_data(cfg, tok, 1234).summary
                assert first.cache.startswith("built") and second.cache.startswith("hit"), (first, second)
                built, hit = built + [first.seconds], hit + [second.seconds]
        b, h = min(built), min(hit)
        rows.append((name, f"{b:.3f}", f"{h:.3f}", f"{h / b:.1%}"))
    header = ("data / tokenizer", "build s (min)", "hit s (min)", "hit / build")
    table("4. Cache: load of a hit as a share of the first build (goal: < 5 %)", header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="training steps before the timed ones")
    parser.add_argument("--repeats", type=int, default=2, help="alternating training runs; timing repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in training; 0: torch's own")
    parser.add_argument("--quick", "--smoke", action="store_true", help="8 timed steps, 2 warm-up, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup, args.repeats = 8, 2, 1
    if args.steps < 1 or args.warmup < 1 or args.repeats < 1:
        parser.error("--steps, --warmup and --repeats must be at least 1")
    load_before = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, 1-min load average at start: {load_before:.2f} (other work here)")
    started = time.perf_counter()

    import torch

    from trainer.models.build import load_tokenizer

    if args.threads:  # one by default: two threads on two shared cores stall whenever others run
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench-data-run-") as run_dir:
        cfg = load_config(run_dir)
    tiny = cfg.data  # the default dataset (tiny_tasks, with its validation file) at its defaults
    builtin = load_tokenizer(cfg.model)
    llama = llama_tokenizer()
    for path in (p for p in (ALPACA, GLAIVE) if not p.exists()):
        print(f"  note: no {path}: its rows are skipped")
    # (name, data config, tokenizer) per section; packing adds the sequence lengths, training the packed
    # rows per step (the padded side gets as many examples as those rows hold on average).
    pack: list[tuple[str, Any, Any, tuple[int, ...]]] = []
    fits: list[tuple[str, Any, int]] = [("tiny_tasks", tiny, 8)]
    encode: list[tuple[str, Any, Any]] = []
    cached: list[tuple[str, Any, Any]] = [("tiny_tasks / built-in", tiny, builtin)]
    if ALPACA.exists():
        alpaca = {n: data_config(ALPACA, ALPACA_FMT, sequence_len=n) for n in (512, 1024, 2048, 16384)}
        for tname, t in (("Llama-2", llama), ("built-in", builtin)) if llama else (("built-in", builtin),):
            pack.append((f"alpaca_en_demo / {tname}", alpaca[512], t, (512, 2048, 4096)))
            encode.append((f"alpaca_en_demo / {tname} @16384", alpaca[16384], t))
            cached.append((f"alpaca_en_demo / {tname} @2048", alpaca[2048], t))
        fits.append(("alpaca_en_demo", alpaca[1024], 1))
    pack.append(("tiny_tasks / built-in", tiny, builtin, (128, 512, 2048)))
    if GLAIVE.exists():
        glaive = data_config(GLAIVE, GLAIVE_FMT, sequence_len=16384)
        encode.append(("glaive_toolcall_en_demo (chat) / built-in @16384", glaive, builtin))
    encode.append(("tiny_tasks / built-in @128", tiny, builtin))

    for run in (
        lambda: bench_packing(pack),
        lambda: bench_training(cfg, builtin, fits, args),
        lambda: bench_tokenize(encode, args.repeats),
        lambda: bench_cache(cached, args.repeats),
    ):
        section = time.perf_counter()
        run()
        print(f"({time.perf_counter() - section:.0f} s)")
    print(f"\n1-min load average at start / at end (end includes this run): {load_before:.2f} / "
          f"{os.getloadavg()[0]:.2f}; whole run {time.perf_counter() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
