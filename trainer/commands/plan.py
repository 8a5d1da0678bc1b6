"""`trainer plan <overrides>`: a dry run. Compose and validate exactly as `trainer` (training)
does, then print what the run would be (groups, resolved config, batch arithmetic, steps, parameter
counts, memory and FLOPs estimates) without training, downloading, or writing any file.

Only local files are read: the data (encoded with the real data code, to count steps) and the
tokenizer when they are local paths, a model's config.json when `model.name_or_path` is a local folder.
Hub models are counted from the presets in `trainer/config/presets.py`; anything else is "unknown".
Exit status: 0 for a valid config, 2 for a user mistake (the same messages as training).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.boundary import Invocation
from trainer.commands.usage import run_command
from trainer.config import TrainConfig
from trainer.config.paths import looks_local

USAGE = "trainer plan [GROUP=OPTION ...] [KEY=VALUE ...]"

# The order of the defaults list in trainer/conf/train.yaml.
_GROUP_ORDER = (
    "model",
    "data",
    "optimizer",
    "scheduler",
    "parallelism",
    "peft",
    "tracker",
    "experiment",
    "debug",
)


@dataclass
class Plan:
    """What the plan found; None where it could not be known without the hub."""

    cfg: TrainConfig
    choices: dict[str, str]
    run_dir: Path  # where training with the same overrides would write
    per_epoch: int | None = None
    total_steps: int | None = None
    warmup: int | None = None
    train_examples: int | None = None
    mean_tokens: float | None = None  # per loader item: an example, or a packed row
    packed: str | None = None
    params: Any = None  # ParamCounts
    model_config: Any = None
    notes: list[str] = field(default_factory=list)


def _tokenizer(cfg: TrainConfig, plan: Plan) -> Any | None:
    """The tokenizer when it is local (a missing local path is an error, as in training), else None."""
    source = cfg.model.tokenizer_source
    if not looks_local(source):
        return None
    from trainer.models.build import load_tokenizer

    return load_tokenizer(cfg.model)


def _model_config(cfg: TrainConfig, tokenizer: Any | None, plan: Plan) -> Any | None:
    from trainer.models.estimate import preset_config

    m = cfg.model
    if m.from_scratch and m.architecture is not None:
        if tokenizer is None:
            plan.notes.append("parameter counts unknown: the vocabulary size comes from the tokenizer")
            return None
        from trainer.models.build import hf_config

        return hf_config(m, tokenizer)
    source = str(m.name_or_path)
    if looks_local(source):
        from trainer.models.build import hf_config

        return hf_config(m, tokenizer)  # reads <folder>/config.json; a missing folder is an error
    preset = preset_config(source)
    if preset is None:
        plan.notes.append(
            f"parameter counts unknown: no built-in architecture for hub id {source}; download it "
            f"(hf download {source} --local-dir DIR) and pass model.name_or_path=DIR"
        )
        return None
    plan.notes.append(f"architecture of {source}: built-in preset (trainer/config/presets.py)")
    if tokenizer is not None:  # a local tokenizer: its added tokens grow the embeddings, as in training
        from trainer.models.build import grow_vocabulary

        return grow_vocabulary(preset, tokenizer)
    if m.added_tokens:
        plan.notes.append(
            f"counts leave out the embedding rows of up to {len(m.added_tokens)} model.added_tokens "
            "(the tokenizer is not local: not downloaded)"
        )
    return preset


def _steps(cfg: TrainConfig, tokenizer: Any | None, plan: Plan) -> None:
    from trainer.config.steps import count_steps

    hub = [f"{key}={path}" for key, path in cfg.data.paths().items() if not looks_local(path)]
    if hub:
        plan.notes.append(f"steps per epoch unknown (hub dataset: not downloaded; {hub[0]})")
    elif tokenizer is None:
        plan.notes.append("steps per epoch unknown (the tokenizer is not local: not downloaded)")
    else:
        from trainer.data.prepare import prepare_data

        # Reads the data cache when it matches, but never writes it: the plan writes nothing.
        data = prepare_data(cfg.data, tokenizer, cfg.data.seed_or(cfg.run.seed), write_cache=False)
        summary = data.summary
        steps = count_steps(cfg, len(data.train_items))
        plan.per_epoch, plan.total_steps, plan.warmup = steps.per_epoch, steps.total, steps.warmup
        plan.train_examples = summary.train_examples
        total = summary.train_total
        plan.mean_tokens = total.tokens / total.kept if total.kept else None
        if summary.packed_rows is not None:
            plan.packed = f"{summary.packed_rows:,} packed rows, {summary.packing_efficiency:.1%} full"
            plan.mean_tokens = (summary.packing_efficiency or 0) * cfg.data.sequence_len
        return
    if cfg.trainer.max_steps is not None:
        plan.total_steps = cfg.trainer.max_steps
        plan.warmup = cfg.scheduler.warmup_for(plan.total_steps)


def make_plan(inv: Invocation) -> Plan:
    """Everything the plan prints, from a validated config; raises UserError for bad local files."""
    cfg = inv.cfg
    plan = Plan(cfg, inv.choices, inv.run_dir)
    tokenizer = _tokenizer(cfg, plan)
    plan.model_config = _model_config(cfg, tokenizer, plan)
    if plan.model_config is not None:
        from trainer.models.accounting import meta_param_counts

        with warnings.catch_warnings():  # deprecation chatter from transformers/peft, not the user's
            warnings.simplefilter("ignore")
            plan.params = meta_param_counts(cfg.model, plan.model_config, cfg.peft)
    _steps(cfg, tokenizer, plan)
    return plan


# --- printing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryFigures:
    """The plan's memory estimate per device, with what the printed rows say about it."""

    memory: Any  # MemoryEstimate, per device
    split: Any  # Sharding
    param_bytes: int  # bytes per weight
    act_bytes: int  # bytes per activation value
    rows_per_item: int  # 2 for pair objectives (chosen and rejected), else 1
    reference: str | None  # reference_kind(...)
    activations_known: bool


def estimate_memory(cfg: TrainConfig, params: Any, model_config: Any) -> MemoryFigures:
    """The memory estimate `trainer plan` prints, as numbers: public so that benchmarks/gpu/check.py
    compares the very same figure with `torch.cuda.max_memory_allocated`."""
    from trainer.config.objective import DATA_KIND, reference_kind
    from trainer.models.estimate import (
        DTYPE_BYTES,
        MemoryEstimate,
        activation_bytes,
        gradient_bytes,
        quantized_weight_bytes,
        sharding,
        unquantized_params,
        weight_bytes,
    )

    p, mc = params, model_config
    full = cfg.peft.method == "none"
    true_half = cfg.precision == "bf16-true"
    param_b = 2 if true_half else DTYPE_BYTES[cfg.model.dtype]
    trainable_b = param_b if (full or true_half) else 4  # PEFT keeps adapters in fp32
    act_b = 4 if cfg.precision == "32" and cfg.model.dtype == "float32" else 2
    shape = [getattr(mc, k, None) for k in ("num_hidden_layers", "hidden_size", "num_attention_heads")]
    vocab = getattr(mc, "vocab_size", None)
    acts = None
    # A pair objective runs each micro batch's chosen and rejected sequences together: twice the rows.
    rows_per_item = 2 if DATA_KIND[cfg.objective.method] == "preference" else 1
    reference = reference_kind(cfg.objective, cfg.peft.method)
    if all(shape) and vocab:
        layers, hidden, heads = shape
        acts = activation_bytes(
            layers,
            hidden,
            heads,
            vocab,
            cfg.data.sequence_len,
            cfg.data.micro_batch * rows_per_item,
            act_b,
            cfg.model.gradient_checkpointing,
            cfg.model.loss_chunk_tokens,
        )
    weights = weight_bytes(p.total, p.trainable, param_b, trainable_b)
    if cfg.model.quantize is not None:
        weights = quantized_weight_bytes(p.total, p.trainable, unquantized_params(mc), cfg.model.quantize)
    mem = MemoryEstimate(
        weights=weights,
        gradients=gradient_bytes(p.trainable, trainable_b),
        optimizer=p.trainable * cfg.optimizer.state_bytes_per_param,
        activations=acts or 0,
        reference=p.total * param_b if reference == "copy" else 0,
    )
    split = sharding(cfg.parallelism)
    return MemoryFigures(
        split.per_device(mem), split, param_b, act_b, rows_per_item, reference, acts is not None
    )


def _memory_rows(plan: Plan) -> list[tuple[str, str]]:
    from trainer.models.estimate import flops_per_token, human_bytes, human_count

    cfg, p = plan.cfg, plan.params
    fig = estimate_memory(cfg, p, plan.model_config)
    mem, split, param_b, act_b = fig.memory, fig.split, fig.param_bytes, fig.act_bytes
    rows_per_item, reference = fig.rows_per_item, fig.reference
    full = cfg.peft.method == "none"
    act_text = (
        f"activations {human_bytes(mem.activations)} (micro {cfg.data.micro_batch * rows_per_item} x "
        f"{cfg.data.sequence_len} tokens, {act_b}-byte)"
        if fig.activations_known
        else "activations unknown"
    )
    flops, how = flops_per_token(p.total, p.trainable, full)
    if reference in ("copy", "adapters_off"):  # one more forward pass, without gradients, per step
        flops, how = flops + 2 * p.total, f"{how}, + 2 x params for the reference's forward"
    tokens = cfg.data.global_batch * cfg.data.sequence_len * rows_per_item
    rows = [
        (
            "memory",
            f"~{human_bytes(mem.total)} per device ({split.note}); an estimate",
        ),
        ("", f"weights {human_bytes(mem.weights)} ({param_b}-byte), gradients {human_bytes(mem.gradients)}"),
        ("", f"{cfg.optimizer.name} states {human_bytes(mem.optimizer)}, {act_text}"),
    ]
    if reference == "copy":
        rows.append(("", f"reference model: a frozen copy, {human_bytes(mem.reference)} ({param_b}-byte)"))
    elif reference == "adapters_off":
        rows.append(("", "reference model: the base with adapters off, no second copy (0 B)"))
    elif reference == "precomputed":
        rows.append(("", "reference model: log-probs precomputed in one pass before the first step (0 B)"))
    rows += [
        ("flops", f"{human_count(flops)} per token: {how}"),
        (
            "",
            f"<= {human_count(flops * tokens)} per optimizer step (global batch x sequence_len tokens"
            + (", x 2 for chosen and rejected)" if rows_per_item == 2 else ")"),
        ),
    ]
    if plan.mean_tokens:
        mean = flops * cfg.data.global_batch * plan.mean_tokens
        rows.append(("", f"~{human_count(mean)} per step at the data's mean {plan.mean_tokens:.1f} tokens"))
    return rows


def render_rows(plan: Plan) -> list[tuple[str, str]]:
    cfg, d = plan.cfg, plan.cfg.data
    ours = {k: v for k, v in plan.choices.items() if not k.startswith("hydra")}
    order = sorted(ours, key=lambda k: _GROUP_ORDER.index(k) if k in _GROUP_ORDER else len(_GROUP_ORDER))
    groups = " ".join(f"{k}={ours[k]}" for k in order)
    steps = (
        f"{plan.per_epoch:,} per epoch ({plan.train_examples:,} train examples"
        + (f"; {plan.packed})" if plan.packed else ")")
        if plan.per_epoch is not None
        else "per epoch unknown"
    )
    if plan.total_steps is not None:
        total = f"{plan.total_steps:,} total, warmup {plan.warmup}"
        if plan.per_epoch:
            total += f" ({plan.total_steps / plan.per_epoch:.2f} epochs)"
    else:
        total = f"total unknown (trainer.max_epochs={cfg.trainer.max_epochs} of unknown length)"
    rows = [
        ("groups", groups),
        (
            "model",
            f"{cfg.model.label} ({cfg.model.dtype}), peft={cfg.peft.method}",
        ),
        ("ranks", f"world size {cfg.parallelism.world_size} (strategy {cfg.parallelism.strategy})"),
        (
            "batch",
            f"global {d.global_batch} = micro {d.micro_batch} x accum {cfg.grad_accum} x "
            f"{cfg.parallelism.world_size} rank(s); sequences <= {d.sequence_len} tokens",
        ),
        ("steps", f"{steps}; {total}"),
    ]
    if plan.params is not None:
        p = plan.params
        rows.append(("params", f"total {p.total:,}, trainable {p.trainable:,} ({p.trainable_pct:.4f} %)"))
        rows += _memory_rows(plan)
    else:
        rows.append(("params", "unknown"))
    rows.append(("outputs", f"training writes to {plan.run_dir}; this plan wrote nothing"))
    rows += [("note", n) for n in plan.notes]
    return rows


def print_plan(plan: Plan) -> None:
    import yaml
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    console = Console(soft_wrap=False, highlight=False)
    shown = plan.cfg.model_dump(mode="json")
    shown["run"]["dir"] = str(plan.run_dir)
    console.print("resolved config (validated; run.dir as training would set it):", markup=False)
    console.print(yaml.safe_dump(shown, sort_keys=False).rstrip(), markup=False)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    for key, value in render_rows(plan):
        grid.add_row(key, value)
    title = f"trainer plan: {plan.cfg.run.experiment}/{plan.cfg.run.name} (dry run, nothing trained)"
    console.print(Panel(grid, title=title, title_align="left", expand=False))


# --- entry -------------------------------------------------------------------------------------------


def main(args: list[str]) -> None:
    run_command("plan", __doc__, USAGE, args, lambda inv: print_plan(make_plan(inv)))
