"""Rules on the model: sequence length vs. positions, attention precision, quantization with PEFT."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from trainer.config.problems import Problem
from trainer.config.rules.training import Rule

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig

FOUR_BIT = ("nf4", "fp4")


def _max_positions(cfg: TrainConfig) -> tuple[int, str] | None:
    """The model's position limit when it is known without downloading: the architecture it is built
    from, or the config.json of a local folder."""
    m = cfg.model
    if m.from_scratch and m.architecture is not None:
        return m.architecture.max_position_embeddings, "model.architecture.max_position_embeddings"
    if m.name_or_path and os.path.isfile(config := os.path.join(m.name_or_path, "config.json")):
        try:
            with open(config, encoding="utf-8") as f:
                limit = json.load(f).get("max_position_embeddings")
        except (OSError, ValueError):
            return None  # an unreadable config.json is reported when the model loads, with its path
        return (limit, config) if isinstance(limit, int) else None
    return None


def _sequence_fits_model(cfg: TrainConfig) -> Problem | None:
    known = _max_positions(cfg)
    if known is not None and cfg.data.sequence_len > known[0]:
        return Problem(
            "data.sequence_len",
            cfg.data.sequence_len,
            f"longer than the model's max_position_embeddings={known[0]} ({known[1]})",
            f"use data.sequence_len<={known[0]}",
        )
    return None


def _flash_attention_needs_half_precision(cfg: TrainConfig) -> Problem | None:
    if (
        cfg.model.attn_implementation == "flash_attention_2"
        and cfg.precision == "32"
        and cfg.model.dtype == "float32"
    ):
        return Problem(
            "model.attn_implementation",
            "flash_attention_2",
            "flash-attn computes in fp16/bf16 only, and this run is fp32 throughout",
            "set trainer.precision=bf16-mixed (or auto), or model.attn_implementation=sdpa",
        )
    return None


def _quantized_base_needs_weights(cfg: TrainConfig) -> Problem | None:
    if cfg.model.quantize is not None and cfg.model.from_scratch:
        return Problem(
            "model.quantize",
            cfg.model.quantize,
            "quantization compresses pretrained weights; a from-scratch model has none to load",
            "set model.from_scratch=false with model.name_or_path, or model.quantize=null",
        )
    return None


def _quantized_base_needs_adapter(cfg: TrainConfig) -> Problem | None:
    if cfg.model.quantize is not None and cfg.peft.method == "none":
        return Problem(
            "model.quantize",
            cfg.model.quantize,
            "quantized weights cannot be trained directly",
            "use peft=qlora (or peft=lora for int8), or model.quantize=null",
        )
    return None


def _qlora_needs_four_bit(cfg: TrainConfig) -> Problem | None:
    if cfg.peft.method == "qlora" and cfg.model.quantize not in FOUR_BIT:
        return Problem(
            "model.quantize",
            cfg.model.quantize,
            "peft=qlora trains LoRA on a 4-bit base",
            "set model.quantize=nf4 (or fp4), or use peft=lora",
        )
    if cfg.peft.method == "lora" and cfg.model.quantize in FOUR_BIT:
        return Problem(
            "peft.method",
            "lora",
            f"LoRA on a {cfg.model.quantize} base is QLoRA",
            "use peft=qlora (same options), or model.quantize=null",
        )
    return None


RULES: tuple[Rule, ...] = (
    _sequence_fits_model,
    _flash_attention_needs_half_precision,
    _quantized_base_needs_weights,
    _quantized_base_needs_adapter,
    _qlora_needs_four_bit,
)
