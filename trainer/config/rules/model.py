"""Rules on the model: sequence length vs. positions, attention kernels, quantization with PEFT, added
tokens with adapters.

Facts about a pretrained model come from what is known without downloading: the built-in architecture
of a hub preset (trainer/config/presets.py) or a local folder's config.json.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from trainer.config.presets import HUB_PRESETS
from trainer.config.problems import Problem
from trainer.config.rules.training import Rule

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig

FOUR_BIT = ("nf4", "fp4")
# Model types whose *ForCausalLM forward changes the output layer's logits (soft-capping, a scale).
SCALED_LOGITS = ("gemma2", "gemma3", "gemma3_text", "cohere", "cohere2", "granite", "granitemoe")


def _known_config(cfg: TrainConfig) -> tuple[dict[str, Any], str] | None:
    """The pretrained model's config.json values and where they came from, when known without the hub:
    a local folder's file, or a hub preset's built-in architecture."""
    source = cfg.model.name_or_path
    if not source:
        return None
    if os.path.isfile(config := os.path.join(source, "config.json")):
        try:
            with open(config, encoding="utf-8") as f:
                values = json.load(f)
        except (OSError, ValueError):
            return None  # an unreadable config.json is reported when the model loads, with its path
        return (values, config) if isinstance(values, dict) else None
    preset = HUB_PRESETS.get(source)
    if preset is not None:
        return preset.config_json, f"{source}, built-in preset"
    return None


def _max_positions(cfg: TrainConfig) -> tuple[int, str] | None:
    """The model's position limit when it is known without downloading: the architecture it is built
    from, a local folder's config.json, or a hub preset's."""
    m = cfg.model
    if m.from_scratch and m.architecture is not None:
        return m.architecture.max_position_embeddings, "model.architecture.max_position_embeddings"
    known = _known_config(cfg)
    if known is None:
        return None
    limit = known[0].get("max_position_embeddings")
    return (limit, known[1]) if isinstance(limit, int) else None


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


def _softcapping_needs_a_kernel_with_it(cfg: TrainConfig) -> Problem | None:
    """Gemma 2 soft-caps its attention logits; transformers' sdpa path raises at the first forward."""
    known = _known_config(cfg)
    if cfg.model.attn_implementation != "sdpa" or known is None:
        return None
    values, source = known
    # Gemma2Config's default is 50.0 when config.json does not say; null turns soft-capping off.
    if values.get("model_type") == "gemma2" and values.get("attn_logit_softcapping", 50.0) is not None:
        return Problem(
            "model.attn_implementation",
            "sdpa",
            f"Gemma 2 soft-caps attention logits ({source}), which sdpa does not support",
            "use model.attn_implementation=eager (or flash_attention_2 on CUDA)",
        )
    return None


def _embedding_names(names: list[str]) -> set[str]:
    """PEFT matches modules_to_save by the end of a module's name: `model.embed_tokens` is embed_tokens."""
    return {n.rsplit(".", 1)[-1] for n in names}


def _added_tokens_need_trained_embeddings(cfg: TrainConfig) -> Problem | None:
    """LoRA freezes the embeddings, so the rows of added tokens would stay at their initial values."""
    if not cfg.model.added_tokens or cfg.peft.method == "none":
        return None
    saved = _embedding_names(list(getattr(cfg.peft, "modules_to_save", None) or []))
    if {"embed_tokens", "lm_head"} <= saved:
        return None
    return Problem(
        "model.added_tokens",
        cfg.model.added_tokens,
        f"peft={cfg.peft.method} freezes the embeddings, so the added tokens' new rows would never train",
        "set peft.modules_to_save=[embed_tokens,lm_head]",
    )


def _loss_chunks_need_the_plain_step(cfg: TrainConfig) -> Problem | None:
    """Chunking calls the decoder and the output layer apart: a sharded strategy gathers its outer
    parameters (embeddings, output layer) only around the whole model's forward, and the preference
    losses score each sequence from its full logits."""
    if cfg.model.loss_chunk_tokens is None:
        return None
    key, value = "model.loss_chunk_tokens", cfg.model.loss_chunk_tokens
    if cfg.parallelism.strategy in ("fsdp", "deepspeed"):
        return Problem(
            key,
            value,
            f"the chunked loss calls the output layer outside the model's forward, which "
            f"parallelism={cfg.parallelism.strategy} shards",
            "set model.loss_chunk_tokens=null, or use parallelism=ddp or single",
        )
    known = _known_config(cfg)
    values, source = known if known is not None else ({}, "")
    if values.get("model_type") in SCALED_LOGITS or values.get("final_logit_softcapping"):
        return Problem(
            key,
            value,
            f"this model scales or soft-caps its output logits ({source}), which the chunked loss leaves out",
            "set model.loss_chunk_tokens=null",
        )
    if cfg.objective.method != "sft":
        return Problem(
            key,
            value,
            f"objective={cfg.objective.method} scores whole sequences from their logits; the chunked loss "
            "is the SFT token loss",
            "set model.loss_chunk_tokens=null",
        )
    return None


RULES: tuple[Rule, ...] = (
    _sequence_fits_model,
    _flash_attention_needs_half_precision,
    _quantized_base_needs_weights,
    _quantized_base_needs_adapter,
    _qlora_needs_four_bit,
    _softcapping_needs_a_kernel_with_it,
    _added_tokens_need_trained_embeddings,
    _loss_chunks_need_the_plain_step,
)
