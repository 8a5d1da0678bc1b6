"""`<run>/model/README.md`: the model card, so an exported folder explains itself away from its run.

Why: a folder copied out of its run (or pushed to the hub) carried no word of what it is: PEFT wrote
its blank template (`base_model: ''`) and a full model had no card at all. The card says what the
base was, how it was trained (method, each dataset with its counts, steps, tokens, hyperparameters),
the final metrics as the run's summary shows them, how to prompt it (the exact rendered prompt and a
snippet with the right loader), and the command that reproduces the run; its YAML header is the
Hugging Face metadata (`base_model` only for a hub id, `datasets` only hub ids).

Written at export, after the final metrics are known and before export.json marks the export whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainer.config import TrainConfig
from trainer.config.paths import looks_local
from trainer.config.steps import StepCount
from trainer.data.summary import DataSummary
from trainer.training.prompt_format import PromptFormat

CARD = "README.md"
EXAMPLE = "List three primary colors."  # the made-up instruction of the card's prompt example


@dataclass(frozen=True)
class CardFacts:
    """What the card reports that the model and its config do not hold: the run's data, steps, metrics."""

    summary: DataSummary
    steps: StepCount
    step: int  # the optimizer step the exported weights are from
    metrics: dict[str, float]  # the final metrics, as the end summary shows them
    tokens: int  # tokens trained on by this fit (a resumed run counts from its resume)
    baseline: dict[str, float] = field(default_factory=dict)  # validation before the first step
    resumed: bool = False


@dataclass(frozen=True)
class Loading:
    """How the folder loads: a full model, an adapter embedding its base, or an adapter on a named base."""

    adapter: bool
    embedded_base: bool


def hub_id(path: str | None) -> str | None:
    return path if path and not looks_local(path) else None


def front_matter(cfg: TrainConfig, loading: Loading) -> dict[str, Any]:
    method = "full" if cfg.peft.method == "none" else cfg.peft.method
    if loading.adapter and getattr(cfg.peft, "use_dora", False):
        method = "dora"
    tags = ["trainer", cfg.objective.method, method, *(["from-scratch"] if cfg.model.from_scratch else [])]
    meta: dict[str, Any] = {}
    base = None if cfg.model.from_scratch else hub_id(cfg.model.name_or_path)
    if base:
        meta["base_model"] = base
    meta["library_name"] = "peft" if loading.adapter else "transformers"
    meta["tags"] = tags
    datasets = sorted({d for ds in cfg.data.datasets.values() if (d := hub_id(ds.path))})
    if datasets:
        meta["datasets"] = datasets
    meta["pipeline_tag"] = "text-generation"
    return meta


def _base_section(cfg: TrainConfig, loading: Loading) -> list[str]:
    m = cfg.model
    if m.from_scratch:
        arch = m.architecture
        shape = (
            f"{arch.family}, {arch.num_hidden_layers} layers, hidden size {arch.hidden_size}, "
            f"{arch.num_attention_heads} attention heads, intermediate size {arch.intermediate_size}"
            if arch is not None
            else f"the architecture of {m.name_or_path}'s config.json"
        )
        lines = [
            f"Trained from scratch (random init), architecture: {shape}; tokenizer `{m.tokenizer_source}`."
        ]
        if loading.embedded_base:
            lines.append(
                "The base weights are saved in this folder beside the adapter, so the folder loads on its "
                "own."
            )
        return lines
    kind = "hub model" if hub_id(m.name_or_path) else "local model folder"
    return [f"Fine-tuned from the {kind} `{m.name_or_path}` ({m.dtype})."]


def _method(cfg: TrainConfig) -> str:
    p = cfg.peft
    if p.method == "none":
        return "full fine-tuning (every parameter trained)"
    targets = p.target_modules if isinstance(p.target_modules, str) else ", ".join(p.target_modules)
    scale = "alpha / sqrt(r)" if p.use_rslora else "alpha / r"
    extra = "; DoRA (learned magnitudes)" if p.use_dora else ""
    extra += f"; trained in full: {', '.join(p.modules_to_save)}" if p.modules_to_save else ""
    base = "; 4-bit base" if p.method == "qlora" else ""
    return (
        f"{'QLoRA' if p.method == 'qlora' else 'LoRA'} r={p.r}, alpha={p.alpha:g} (scale {scale}), "
        f"dropout {p.dropout:g}, targets {targets}{extra}{base}"
    )


def _data_rows(cfg: TrainConfig, summary: DataSummary) -> list[str]:
    rows = [
        "| dataset | source | format | kept | dropped | tokens | in the training set |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, configs, stats in (
        ("datasets", cfg.data.datasets, summary.train),
        ("validation", cfg.data.validation or {}, summary.val),
    ):
        for name, s in stats.items():
            ds = configs.get(name)
            source = ds.path if ds is not None else "?"
            fmt = ds.format.type if ds is not None else "?"
            if ds is not None and ds.format.type == "alpaca":
                fmt += f" ({ds.format.template})"
            used = summary.mixed.get(name, "") if group == "datasets" else "validation"
            rows.append(
                f"| data.{group}.{name} | `{source}` | {fmt} | {s.kept:,} of {s.read:,} | "
                f"{s.describe_drops()} | {s.tokens:,} | {used if used == 'validation' else f'{used:,}'} |"
            )
    return rows


def _training_section(cfg: TrainConfig, facts: CardFacts) -> list[str]:
    d, s, steps = cfg.data, facts.summary, facts.steps
    held = f", {s.val_examples:,} validation examples" if s.val_examples else ""
    packing = f", packed into {s.packed_rows:,} rows" if s.packed_rows is not None else ""
    tokens = f"{facts.tokens:,}" + (" (since the resume)" if facts.resumed else "")
    return [
        f"- objective: {objective_text(cfg)}",
        f"- method: {_method(cfg)}",
        "- data:",
        "",
        *_data_rows(cfg, s),
        "",
        f"- training set: {s.train_examples:,} examples{held}{packing}",
        f"- steps: {steps.total} optimizer steps ({steps.epochs:.2f} epochs of {steps.per_epoch} steps), "
        f"tokens seen: {tokens}",
        f"- optimizer: {cfg.optimizer.name}, lr {cfg.optimizer.lr:g}, weight decay "
        f"{cfg.optimizer.weight_decay:g}",
        f"- schedule: {cfg.scheduler.name}, warmup {steps.warmup} steps, final lr "
        f"{cfg.scheduler.min_lr_ratio:g} x peak",
        f"- batch: global {d.global_batch} = micro {d.micro_batch} x accumulation {cfg.grad_accum} x "
        f"{cfg.parallelism.world_size} rank(s)",
        f"- sequence length: {d.sequence_len} tokens (too long: {d.too_long}); "
        f"trained on {'every token' if d.train_on_inputs else 'the responses only'}",
        f"- precision: {cfg.trainer.precision}, weights {cfg.model.dtype}; seed {cfg.run.seed}",
    ]


REWARD_KEYS = ("val/rewards/accuracy", "val/rewards/margins", "val/rewards/chosen", "val/rewards/rejected")
OBJECTIVES = {
    "sft": "supervised fine-tuning",
    "dpo": "DPO",
    "orpo": "ORPO",
    "simpo": "SimPO",
    "kto": "KTO",
}


def objective_text(cfg: TrainConfig) -> str:
    """`supervised fine-tuning`, or the preference objective with its keys (`DPO, beta 0.1, ...`)."""
    o = cfg.objective
    if o.method == "sft":
        return OBJECTIVES["sft"]
    name = "IPO" if getattr(o, "loss", None) == "ipo" else OBJECTIVES[o.method]
    keys = ", ".join(f"{k} {v}" for k, v in o.model_dump().items() if k not in ("method", "loss"))
    return f"{name} ({keys})"


def _results_section(facts: CardFacts) -> list[str]:
    def cell(key: str, values: dict[str, float], percent: bool = False) -> str:
        if key not in values:
            return "n/a"
        return f"{values[key]:.1%}" if percent else f"{values[key]:.4f}"

    m, b = facts.metrics, facts.baseline
    return [
        f"At step {facts.step}:",
        "",
        "| metric | before training | final |",
        "|---|---|---|",
        f"| val loss | {cell('val/loss', b)} | {cell('val/loss', m)} |",
        *(
            [f"| exact match | {cell('val/exact_match', b, True)} | {cell('val/exact_match', m, True)} |"]
            if "val/exact_match" in m or "val/exact_match" in b
            else []
        ),
        *(
            f"| {key[4:]} | {cell(key, b, pct)} | {cell(key, m, pct)} |"
            for key, pct in ((k, k.endswith("accuracy")) for k in REWARD_KEYS)
            if key in m
        ),
        f"| train loss | | {cell('train/loss', m)} |",
    ]


def _loader(out: Path, loading: Loading, chat: bool) -> list[str]:
    """A snippet that loads the folder with the loader its layout needs and prompts it."""
    tokenizer = ", tokenizer=model_dir" if loading.adapter and not loading.embedded_base else ""
    if chat:
        call = [
            f'messages = [{{"role": "user", "content": "{EXAMPLE}"}}]',
            "reply = generate(messages, max_new_tokens=64, do_sample=False)",
            'print(reply[0]["generated_text"][-1]["content"])',
        ]
    else:
        call = [
            'reply = generate("Once upon a time", max_new_tokens=64, do_sample=False, '
            "return_full_text=False)",
            'print(reply[0]["generated_text"])',
        ]
    lines = [
        "```python",
        "from transformers import pipeline",
        "",
        f'model_dir = "{out}"  # this folder',
        f'generate = pipeline("text-generation", model=model_dir{tokenizer})',
        *call,
        "```",
    ]
    if loading.adapter:
        base = (
            "base = AutoModelForCausalLM.from_pretrained(model_dir)  # the base saved in this folder"
            if loading.embedded_base
            else "base = AutoModelForCausalLM.from_pretrained(PeftConfig.from_pretrained(model_dir)"
            ".base_model_name_or_path)"
        )
        lines += [
            "",
            "As a `PeftModel` (e.g. to switch the adapter off: `with model.disable_adapter():`; "
            "`trainer merge infer.source=<this folder>` writes the adapter merged into its base):",
            "",
            "```python",
            "from peft import PeftModel"
            if loading.embedded_base
            else "from peft import PeftConfig, PeftModel",
            "from transformers import AutoModelForCausalLM",
            "",
            base,
            "model = PeftModel.from_pretrained(base, model_dir)",
            "```",
        ]
    if loading.adapter and not loading.embedded_base:
        lines += [
            "",
            "Pass `tokenizer=model_dir` as above: without it the pipeline takes the base model's tokenizer, "
            "whose chat template is not the one this adapter was trained with.",
        ]
    return lines


PLAIN_PROMPTS = (
    "It was trained on prompts as plain text (template none), each followed by a response: prompt it with "
    "the prompt text, and it continues with the response."
)


def _prompt_section(out: Path, fmt: PromptFormat, tokenizer: Any, loading: Loading) -> list[str]:
    if fmt.kind == "raw":
        how = {
            "completion": "It was trained on raw text and continues text: give it the beginning of a text.",
            "pretokenized": "It was trained on token ids given as they are, so it has no prompt layout: "
            "prompt it with text in whatever layout those ids followed.",
            "input_output": "It was trained on text segments (bos first, then the segments one after "
            "another): prompt it with the untrained segments' text, and it continues with what follows.",
            "preference": PLAIN_PROMPTS,
            "kto": PLAIN_PROMPTS,
        }[fmt.format_type]
        return [
            f"{how} The tokenizer carries no chat template: there is no chat layout to prompt it with "
            f"({fmt.dataset} has format {fmt.format_type}), so prompt the pipeline with a string.",
            "",
            *_loader(out, loading, chat=False),
        ]
    example = tokenizer.apply_chat_template(
        [{"role": "user", "content": EXAMPLE}], chat_template=fmt.template, add_generation_prompt=True,
        tokenize=False,
    )  # fmt: skip
    if fmt.kind == "alpaca":
        intro = [
            f"It was trained on `{fmt.style}` prompts ({fmt.dataset}). The tokenizer's chat template renders "
            "chat messages as exactly that prompt, so `apply_chat_template` and the `text-generation` "
            "pipeline prompt it as training did. Training was single-turn: the template shows a leading "
            "system message and the last user message only (earlier turns are left out). A record's "
            "`input` has no place in chat messages; to prompt with one, tokenize the prompt text with "
            "its `### Input:` block yourself (`tokenizer(text)` adds the special tokens training added).",
        ]
    else:
        intro = [
            f"It was trained on conversations ({fmt.dataset}, format {fmt.format_type}) rendered with the "
            "chat template the tokenizer carries, so chat messages are prompted as in training.",
        ]
    return [
        *intro,
        "",
        f'The prompt for the user message "{EXAMPLE}" (the text `apply_chat_template(messages, '
        "add_generation_prompt=True, tokenize=False)` gives):",
        "",
        "```text",
        example,
        "```",
        "",
        *_loader(out, loading, chat=True),
    ]


def _reproduce_section(cfg: TrainConfig) -> list[str]:
    run_dir = Path(cfg.run.dir)
    try:
        provenance = json.loads((run_dir / "provenance.json").read_text())
    except (OSError, ValueError):
        provenance = {}
    command = provenance.get("command", "python -m trainer")
    commit = provenance.get("git_commit")
    code = f" at git commit `{commit}`{' (with uncommitted changes)' if provenance.get('git_dirty') else ''}"
    return [
        f"The run folder `{run_dir}` holds `config.yaml`, every setting resolved and validated, and "
        "`provenance.json` (package versions, host). From the trainer's source"
        f"{code if commit else ''}, this command trains the same run again:",
        "",
        "```bash",
        command,
        "```",
    ]


def render(
    cfg: TrainConfig, facts: CardFacts, fmt: PromptFormat, tokenizer: Any, out: Path, loading: Loading
) -> str:
    header = yaml.safe_dump(front_matter(cfg, loading), sort_keys=False)
    what = "a LoRA adapter" if loading.adapter else "a model"
    lines = [
        f"---\n{header}---",
        "",
        f"# {cfg.run.experiment}/{cfg.run.name}",
        "",
        f"{what[0].upper()}{what[1:]} trained with trainer ({objective_text(cfg)}, {cfg.peft.method}).",
        "",
        "## Base model",
        "",
        *_base_section(cfg, loading),
        "",
        "## Training",
        "",
        *_training_section(cfg, facts),
        "",
        "## Results",
        "",
        *_results_section(facts),
        "",
        "## How to prompt it",
        "",
        *_prompt_section(out, fmt, tokenizer, loading),
        "",
        "## Reproduce",
        "",
        *_reproduce_section(cfg),
        "",
    ]
    return "\n".join(lines)


def write_card(
    out: Path, cfg: TrainConfig, facts: CardFacts, fmt: PromptFormat, tokenizer: Any, loading: Loading
) -> Path:
    """Write `out/README.md` (over PEFT's template)."""
    path = out / CARD
    path.write_text(render(cfg, facts, fmt, tokenizer, out, loading), encoding="utf-8")
    return path
