"""Rules on `objective:`: the data it needs, its reference model, and the metrics it produces.

A preference objective reads pairs (or KTO's labelled single responses) and SFT reads examples; giving
one the other's data would fail only after the data is tokenized and the model built, with a shape
error. A reference made by disabling adapters needs adapters; a frozen copy is not sharded yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainer.config.objective import DATA_KIND, reference_kind
from trainer.config.problems import Problem

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig

PRESETS = {"preference": "data=tiny_prefs", "kto": "data=tiny_kto", "sft": "data=tiny_tasks"}
METHODS_FOR = {"sft": "objective=sft", "preference": "objective=dpo|orpo|simpo", "kto": "objective=kto"}
REWARD_METRICS = ("val/rewards/accuracy", "val/rewards/margins")


def _data_fits_objective(cfg: TrainConfig) -> Problem | None:
    method = cfg.objective.method
    needed, given = DATA_KIND[method], cfg.data.kind
    if needed == given:
        return None
    layouts = {
        "sft": "SFT datasets (alpaca, chat, completion, input_output, pretokenized)",
        "preference": "preference pairs (format.type=preference)",
        "kto": "KTO examples (format.type=kto)",
    }
    return Problem(
        "objective",
        method,
        f"reads {layouts[needed]}, but the data is {layouts[given]}",
        f"use {METHODS_FOR[given]} for this data, or data of the right kind ({PRESETS[needed]})",
    )


def _reference_needs_adapters(cfg: TrainConfig) -> Problem | None:
    if reference_kind(cfg.objective, cfg.peft.method) != "adapters_off" or cfg.peft.method != "none":
        return None
    return Problem(
        "objective.reference",
        "adapters_off",
        "the reference is the policy with its LoRA adapters disabled, but peft=none trains no adapters",
        "use peft=lora, or objective.reference=copy (a frozen copy of the starting weights)",
    )


def _copy_is_not_sharded(cfg: TrainConfig) -> Problem | None:
    strategy = cfg.parallelism.strategy
    if reference_kind(cfg.objective, cfg.peft.method) != "copy" or strategy in ("single", "ddp"):
        return None
    return Problem(
        "objective.reference",
        "copy",
        f"a frozen reference copy is not sharded under parallelism={strategy} yet, so every rank would "
        "hold the whole model twice",
        "use peft=lora (the reference is the base with adapters off), or parallelism=ddp|single",
    )


def _smoothing_is_for_sigmoid(cfg: TrainConfig) -> Problem | None:
    o = cfg.objective
    if o.method != "dpo" or o.loss != "ipo" or o.label_smoothing == 0:
        return None
    return Problem(
        "objective.label_smoothing",
        o.label_smoothing,
        "label smoothing applies to the sigmoid (DPO) loss, not to IPO's squared loss",
        "set objective.label_smoothing=0, or objective.loss=sigmoid",
    )


def _kto_reference_is_not_precomputed(cfg: TrainConfig) -> Problem | None:
    if cfg.objective.method != "kto" or cfg.objective.reference != "precomputed":
        return None
    return Problem(
        "objective.reference",
        "precomputed",
        "KTO's KL rows pair each prompt with another example's completion as the batch falls, so their "
        "reference log-probs cannot be computed ahead",
        "use objective.reference=adapters_off (with peft=lora) or copy",
    )


def _kto_needs_a_mismatch(cfg: TrainConfig) -> Problem | None:
    if cfg.objective.method != "kto" or cfg.data.micro_batch >= 2:
        return None
    return Problem(
        "data.micro_batch",
        cfg.data.micro_batch,
        "KTO estimates its KL term from prompts paired with another example's completion in the same "
        "micro batch, so it needs at least 2 examples per micro batch",
        "use data.micro_batch=2 or more",
    )


def _best_metric_exists(cfg: TrainConfig) -> Problem | None:
    metric, sft = cfg.trainer.best_metric, cfg.objective.method == "sft"
    if metric in REWARD_METRICS and sft:
        return Problem(
            "trainer.best_metric",
            metric,
            "reward metrics come from preference objectives; objective=sft logs val/loss and val/exact_match",
            "use trainer.best_metric=val/loss or val/exact_match",
        )
    if metric == "val/exact_match" and not sft:
        return Problem(
            "trainer.best_metric",
            metric,
            f"objective={cfg.objective.method} validates on preference data, which has no exact match",
            "use trainer.best_metric=val/loss, val/rewards/accuracy or val/rewards/margins",
        )
    return None


RULES = (
    _data_fits_objective,
    _reference_needs_adapters,
    _copy_is_not_sharded,
    _kto_needs_a_mismatch,
    _smoothing_is_for_sigmoid,
    _kto_reference_is_not_precomputed,
    _best_metric_exists,
)
