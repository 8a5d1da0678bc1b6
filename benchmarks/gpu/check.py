"""The one-shot GPU device check (issue 16): the project's CUDA figures in one run of at most 8 minutes.

Why: a GPU machine is lent only now and then, for minutes, bare and offline. This script is rehearsed on
CPU (`--dry`, tiny sizes, a CI test runs it) so that the first GPU minutes measure instead of debug. Each
section is a function returning a dict (its figures, or `skipped` with the reason, or `error`); the JSON
is rewritten after every section, so a run stopped by its time limit still leaves what it measured.

Sections: environment; throughput and MFU of full fine-tuning of the llama3_2_1b shape (random init,
packed rows) through the project's Lightning module and `single` strategy, per attention kind and
activation checkpointing; the same step in a hand-written PyTorch loop (the launcher's overhead ratio);
`trainer plan`'s memory estimate vs torch.cuda.max_memory_allocated (full and LoRA); `pytest -m gpu`.

Run: python benchmarks/gpu/check.py --dry [--out DIR]     (CPU, about 2 minutes)
     benchmarks/gpu/run_on_device.sh                      (on the device: installs the wheels, runs this)
It imports the installed project (the wheel from benchmarks/gpu/wheels.py), never mlflow or datasets.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from loops import (
    packed_and_padded,
    packed_batches,
    random_examples,
    rate,
    run_baseline,
    run_ours,
    save_pretrained,
)

from trainer.boundary import compose
from trainer.commands.plan import estimate_memory
from trainer.config import TrainConfig
from trainer.models.accounting import meta_param_counts
from trainer.models.build import hf_config, load_tokenizer
from trainer.models.estimate import flops_per_token, preset_config

ROOT = Path(__file__).resolve().parents[2]
PEAK_BF16 = 989e12  # H200 (= H100 SXM) dense bf16 FLOP/s, the datasheet figure MFU is quoted against
HUB_ID = "meta-llama/Llama-3.2-1B"  # its shape comes from trainer/config/presets.py: no hub, random init
OPTIONAL = ("flash_attn", "deepspeed", "bitsandbytes", "liger_kernel", "triton")
QUIET = (
    "tracker=none trainer.progress_bar=false trainer.val_every=disable trainer.val_at_start=false"
    " data.validation=null trainer.checkpoint_every=disable trainer.save_last=false"
    " trainer.export_model=false"
).split()
Batch = dict[str, torch.Tensor]


class Sizes:
    """What one mode runs: the full check on one H200, or the dry rehearsal on CPU."""

    def __init__(self, dry: bool, micro_batch: int, settings: tuple[str, ...] = ()) -> None:
        self.dry, self.settings = dry, settings
        self.seq = 128 if dry else 2048
        self.micro = 2 if dry else micro_batch
        self.warmup, self.timed = (1, 3) if dry else (3, 10)
        self.budget = 240.0 if dry else 430.0  # seconds for the whole run (dry: 2 busy cores)
        self.needs = {"variant": 5.0, "pytest": 10.0, "compile": 5.0}
        if not dry:
            self.needs = {"variant": 45.0, "pytest": 30.0, "compile": 100.0}

    def overrides(self, *extra: str) -> list[str]:
        base = [f"data.sequence_len={self.seq}", f"data.micro_batch={self.micro}"]
        base += [f"data.global_batch={self.micro}", "data.packing=true", "parallelism=single"]
        base += ["trainer.precision=auto"]  # bf16-mixed on the H200 (the project's default is 32)
        if not self.dry and "model=folder" not in extra:  # a folder's config.json says its own
            base += ["model.architecture.max_position_embeddings=131072"]
        return [*QUIET, *base, *extra, *self.settings]  # --set last: it wins


class Clock:
    """The run's deadline: a section that would not fit is skipped with the reason, not started."""

    def __init__(self, budget: float) -> None:
        self.start, self.budget = time.perf_counter(), budget

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)

    def too_late(self, needs: float) -> str | None:
        left = self.left()
        return (
            None
            if left >= needs
            else f"would not fit: {left:.0f} s left of {self.budget:.0f}, needs ~{needs:.0f}"
        )


def setup(sizes: Sizes, *extra: str) -> tuple[TrainConfig, Any]:
    """A validated config (the CLI's compose path) and the model config: the llama3_2_1b preset on a GPU
    (random init, since model=tiny is from_scratch), the tiny default's own in --dry."""
    cfg = compose(sizes.overrides(*extra), "gpu-check").cfg
    model_config = hf_config(cfg.model, load_tokenizer(cfg.model)) if sizes.dry else preset_config(HUB_ID)
    return cfg, model_config


def measured(
    runner: Callable, cfg: TrainConfig, model_config: Any, sizes: Sizes, batches: list | None = None
) -> dict[str, Any]:
    """One timed run: tokens/s, MFU (on CUDA), the first loss and the peak of allocated CUDA memory."""
    if batches is None:
        batches = packed_batches(sizes.warmup + sizes.timed, sizes.micro, sizes.seq, model_config.vocab_size)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    stamps, first_loss = runner(cfg, model_config, batches)
    tok_s = rate(stamps, batches, sizes.warmup)
    params = meta_param_counts(cfg.model, model_config, cfg.peft)
    per_token, _ = flops_per_token(params.total, params.trainable, cfg.peft.method == "none")
    # Attention's score and value products, as torchtitan counts them (the causal half not taken off).
    attention = 12 * model_config.num_hidden_layers * model_config.hidden_size * sizes.seq
    out = {"tokens_per_s": round(tok_s, 1), "first_loss": round(first_loss, 5), "seconds": 0.0}
    if torch.cuda.is_available():
        out["mfu_6n"] = round(tok_s * per_token / PEAK_BF16, 4)
        out["mfu_6n_attention"] = round(tok_s * (per_token + attention) / PEAK_BF16, 4)
        out["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 3)
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def attempt(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One measurement, or its error: an out-of-memory in one variant must not lose the section."""
    try:
        return run()
    except Exception as err:
        traceback.print_exc()
        return {"error": f"{type(err).__name__}: {err}"[:500]}
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# --- sections ------------------------------------------------------------------------------------------


def import_error(name: str) -> str | None:
    """Why `name` does not import, or None when it does (a package built for another CUDA fails in its
    own ways, not only with ImportError)."""
    try:
        import_module(name)
        return None
    except Exception as err:
        return f"{type(err).__name__}: {str(err)[:80]}"


def importable(name: str) -> bool:
    return import_error(name) is None


def environment(sizes: Sizes, clock: Clock) -> dict[str, Any]:
    out: dict[str, Any] = {"python": sys.version.split()[0], "torch": torch.__version__}
    out["cuda"] = torch.version.cuda if torch.cuda.is_available() else "no CUDA"
    if torch.cuda.is_available():
        out["device"] = torch.cuda.get_device_name(0)
        out["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    for name in ("transformers", "lightning", "peft", "pydantic", "hydra-core", "trainer"):
        out[name] = version(name)
    for name in OPTIONAL:
        why = import_error(name)
        out[name] = f"missing ({why})" if why else version(name.replace("_", "-"))
    out["peak_bf16_flops_for_mfu"] = PEAK_BF16
    return out


def attention_kinds() -> dict[str, str | None]:
    """Each attention kind to measure, with the reason it is skipped (None: it runs)."""
    kinds: dict[str, str | None] = {"sdpa": None}
    kinds["flex_attention"] = (
        "no CUDA (torch's FlexAttention has no backward on the CPU)"
        if not torch.cuda.is_available()
        else None
    )
    why = import_error("flash_attn")
    kinds["flash_attention_2"] = (
        "no CUDA" if not torch.cuda.is_available() else why and f"flash_attn does not import: {why}"
    )
    return kinds


def throughput(sizes: Sizes, clock: Clock) -> dict[str, Any]:
    out: dict[str, Any] = {"sequence_len": sizes.seq, "micro_batch": sizes.micro, "steps": sizes.timed}
    for kind, reason in attention_kinds().items():
        for ckpt in (False, True):
            name = f"{kind}, checkpointing {'on' if ckpt else 'off'}"
            why = reason or clock.too_late(sizes.needs["variant"])
            if why:
                out[name] = {"skipped": why}
                continue
            extra = [f"model.attn_implementation={kind}", f"model.gradient_checkpointing={str(ckpt).lower()}"]
            out[name] = attempt(lambda extra=extra: measured(run_ours, *setup(sizes, *extra), sizes))
            print(f"  {name}: {out[name]}", flush=True)
    return out


def overhead(sizes: Sizes, clock: Clock) -> dict[str, Any]:
    reason = clock.too_late(2 * sizes.needs["variant"])
    if reason:
        return {"skipped": reason}
    cfg, model_config = setup(sizes, "model.attn_implementation=sdpa")
    base = measured(run_baseline, cfg, model_config, sizes)
    ours = measured(run_ours, cfg, model_config, sizes)
    ratio = round(ours["tokens_per_s"] / base["tokens_per_s"], 3)
    return {"hand_written": base, "ours": ours, "ratio_ours_over_hand_written": ratio}


def packing(sizes: Sizes, clock: Clock) -> dict[str, Any]:
    """Packed rows against padded batches of the same alpaca_en_demo lengths (alpaca_lengths.json), sdpa,
    checkpointing off: effective (non-padding) tokens/s. Dry: the lengths scaled to the shorter rows."""
    reason = clock.too_late(2 * sizes.needs["variant"])
    if reason:
        return {"skipped": reason}
    record = json.loads((Path(__file__).resolve().parent / "alpaca_lengths.json").read_text())
    scale = record["sequence_len"] // sizes.seq
    lengths = [max(2, n // scale) for n in record["lengths"]]
    cfg, model_config = setup(sizes, "model.attn_implementation=sdpa")
    examples = random_examples(lengths, model_config.vocab_size)
    packed, padded = packed_and_padded(examples, sizes.micro, sizes.seq, sizes.warmup + sizes.timed)
    out: dict[str, Any] = {"lengths": record["source"], "examples": len(lengths), "scaled_by": scale}
    for name, batches in (("packed", packed), ("padded", padded)):
        fill = sum(int(b["real_tokens"]) for b in batches) / sum(b["input_ids"].numel() for b in batches)
        run = attempt(lambda b=batches: measured(run_ours, cfg, model_config, sizes, b))
        out[name] = {"batch_shape": list(batches[0]["input_ids"].shape), "fill": round(fill, 4), **run}
    if "tokens_per_s" in out["packed"] and "tokens_per_s" in out["padded"]:
        out["packed_over_padded"] = round(out["packed"]["tokens_per_s"] / out["padded"]["tokens_per_s"], 3)
    return out


MEMORY_RUNS = {
    "full": ["peft=none"],
    "full, loss in chunks": ["peft=none", "model.loss_chunk_tokens=2048"],
    "full, checkpointing": ["peft=none", "model.gradient_checkpointing=true"],
    "full, checkpointing, loss in chunks": [
        "peft=none",
        "model.gradient_checkpointing=true",
        "model.loss_chunk_tokens=2048",
    ],
    "full, 8-bit AdamW": ["peft=none", "optimizer=adamw8bit"],
    "lora": ["peft=lora"],
    "qlora": ["peft=qlora", "model=folder"],  # 4-bit quantization loads pretrained weights: a saved folder
}
# Rows only a CUDA machine with bitsandbytes runs; --dry composes them with these facts, for the estimate.
CUDA_ONLY = {"full, 8-bit AdamW", "qlora"}
GPU_FACTS = ["hardware.cuda=true", "hardware.gpu_count=1", "hardware.bf16=true"]
GPU_FACTS += ["hardware.packages={bitsandbytes:true}"]
NOT_MEASURED = {
    "fsdp2, one device": "the config refuses parallelism=fsdp with one process (it only adds "
    "overhead); sharding needs 2+ GPUs, and this machine has one",
    "deepspeed zero-2/3": "deepspeed is not in the device image and is published as a source archive only",
}


def memory(sizes: Sizes, clock: Clock) -> dict[str, Any]:
    """`trainer plan`'s estimate against the measured peak, and the chunked loss's saving and cost (the
    same micro batches with and without model.loss_chunk_tokens)."""
    out: dict[str, Any] = {}
    runs_here = torch.cuda.is_available() and importable("bitsandbytes")
    for name, extra in MEMORY_RUNS.items():
        if sizes.dry and "loss_chunk" in " ".join(extra):
            extra = [e.replace("=2048", "=64") for e in extra]  # dry rows are 2 x 128 tokens
        if "model=folder" in extra:
            extra = [*extra, f"model.name_or_path={pretrained_folder(sizes)}"]
        skip = None if name not in CUDA_ONLY or runs_here else "needs CUDA and bitsandbytes"
        facts = GPU_FACTS if skip and sizes.dry else []
        cfg, model_config = setup(sizes, "model.attn_implementation=sdpa", *extra, *facts)
        params = meta_param_counts(cfg.model, model_config, cfg.peft)
        est = estimate_memory(cfg, params, model_config).memory
        row: dict[str, Any] = {"estimate_gib": round(est.total / 1024**3, 3), "precision": cfg.precision}
        row |= {f"estimate_{k}_gib": round(getattr(est, k) / 1024**3, 3) for k in ("weights", "activations")}
        skip = skip or clock.too_late(sizes.needs["variant"])
        if skip:
            row["measured"] = f"skipped: {skip}"
        else:
            run = attempt(lambda c=cfg, m=model_config: measured(run_ours, c, m, sizes))
            row |= {k: run[k] for k in ("tokens_per_s", "first_loss", "error") if k in run}
            got = run.get("peak_allocated_gib")
            if got:
                row |= {"measured_gib": got, "estimate_over_measured": round(row["estimate_gib"] / got, 3)}
        out[name] = row
        print(f"  {name}: {row}", flush=True)
    for name, reason in NOT_MEASURED.items():
        out[name] = {"skipped": reason}
    return out


def pretrained_folder(sizes: Sizes) -> Path:
    """A local model folder (config.json, safetensors, the shipped tokenizer) of the measured shape with
    random weights: what a 4-bit base is loaded from (bitsandbytes quantizes on load). Written afresh
    each run, so a folder left by an older shape is never measured."""
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"gpu-check-model-{'dry' if sizes.dry else '1b'}"
    shutil.rmtree(folder, ignore_errors=True)
    cfg, model_config = setup(sizes)
    save_pretrained(cfg, model_config, folder, dtype=torch.float32 if sizes.dry else torch.bfloat16)
    return folder


def gpu_tests(sizes: Sizes, clock: Clock) -> dict[str, Any]:
    """`pytest -m gpu` over the test files that mark tests gpu (collecting the rest would only cost time)."""
    reason = clock.too_late(sizes.needs["pytest"])
    if reason:
        return {"skipped": reason}
    files = sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py") if "mark.gpu" in p.read_text()
    )
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", *files]
    limit = max(clock.left(), 1.0)
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as err:
        return {"files": files, "skipped": f"timed out after {limit:.0f} s", "tail": str(err.stdout)[-1500:]}
    counts = {
        k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?)", done.stdout)
    }
    return {"files": files, "exit": done.returncode, **counts, "tail": done.stdout[-1500:]}


def compiled(sizes: Sizes, clock: Clock) -> dict[str, Any]:
    """The throughput row sdpa / checkpointing off again with model.compile=true (last: its compilation
    takes a minute or more, and the other sections come first)."""
    reason = (
        "no CUDA (compiling on the CPU is rehearsed by the tests)" if not torch.cuda.is_available() else None
    )
    reason = reason or clock.too_late(sizes.needs["compile"])
    if reason:
        return {"skipped": reason}
    extra = ["model.attn_implementation=sdpa", "model.compile=true"]
    return {
        "sdpa, checkpointing off, compiled": attempt(lambda: measured(run_ours, *setup(sizes, *extra), sizes))
    }


SECTIONS = {
    "environment": environment,
    "throughput": throughput,
    "overhead": overhead,
    "memory": memory,
    "packing": packing,
    "gpu_tests": gpu_tests,
    "compiled": compiled,
}


# --- report --------------------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    """One table per section, nested dicts flattened to `a / b` keys."""

    def flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
        rows = []
        for k, v in d.items():
            key = f"{prefix}{k}"
            rows += flat(v, f"{key} / ") if isinstance(v, dict) else [(key, v)]
        return rows

    lines = [f"# GPU check ({report['mode']}), {report['date']}", ""]
    for name, section in report["sections"].items():
        lines += [f"## {name}", "", "| key | value |", "| --- | --- |"]
        for key, value in flat(section):
            text = str(value).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {key} | {text[:300]} |")
        lines.append("")
    return "\n".join(lines)


def write(report: dict[str, Any], out: Path | None) -> None:
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
        (out / "gpu_check.md").write_text(markdown(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="CPU rehearsal at tiny sizes (about 2 minutes)")
    parser.add_argument("--out", type=Path, help="write gpu_check.json and gpu_check.md here")
    parser.add_argument("--micro-batch", type=int, default=4, help="rows of 2048 tokens per step (full mode)")
    parser.add_argument("--only", nargs="*", choices=list(SECTIONS), help="run these sections only")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for every run (model.compile=true)",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for pattern in (".*does not have many workers.*", ".*LeafSpec.*", ".*validation_step.*"):
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if not args.dry and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --dry for the CPU rehearsal")
    sizes = Sizes(args.dry, args.micro_batch, tuple(args.set))
    clock = Clock(sizes.budget)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report: dict[str, Any] = {"mode": "dry" if args.dry else "full", "date": stamp, "set": args.set}
    report["sections"] = {}
    for name, section in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        print(f"== {name} ({clock.left():.0f} s left)", flush=True)
        start = time.perf_counter()
        try:
            result = section(sizes, clock)
        except Exception as err:  # one broken section must not cost the others' figures
            traceback.print_exc()
            result = {"error": f"{type(err).__name__}: {err}"[:500]}
        result["section_seconds"] = round(time.perf_counter() - start, 1)
        report["sections"][name] = result
        write(report, args.out)
    report["total_seconds"] = round(time.perf_counter() - clock.start, 1)
    write(report, args.out)
    print(json.dumps(report, indent=2))
    print(markdown(report))


if __name__ == "__main__":
    main()
