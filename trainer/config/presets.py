"""Architectures of well-known hub models, known without the hub: the model presets' registry.

`trainer plan` counts their parameters from these values (on the meta device), and the config rules
read their position limit and attention options, all without downloading anything. Standard library
only, so the rules can use it before torch or transformers load; `trainer.models.estimate.preset_config`
turns an entry into a transformers config object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HubArchitecture:
    """A hub model's architecture, known without the hub: the transformers config class that reads its
    config.json and the shape-relevant values of that file (plus position limit and special token ids)."""

    config_class: str  # a class exported by transformers, e.g. "LlamaConfig"
    values: dict[str, Any]

    @property
    def max_position_embeddings(self) -> int:
        return int(self.values["max_position_embeddings"])

    @property
    def config_json(self) -> dict[str, Any]:
        """The values as the hub's config.json states them, `model_type` included, for rules that read
        a local config.json and a preset alike (without importing transformers)."""
        return {"model_type": MODEL_TYPES[self.config_class], **self.values}


# transformers' `model_type` of each config class used below (its key in config.json).
MODEL_TYPES = {
    "LlamaConfig": "llama",
    "MistralConfig": "mistral",
    "Qwen2Config": "qwen2",
    "Gemma2Config": "gemma2",
    "Phi3Config": "phi3",
}


# Architectures of well-known hub models, so that a plan can count their parameters (and the rules know
# their position limit) without the hub. Values are those of each model's config.json on the hub, as
# published on its model card page; the comment gives the total the model card states, which
# tests/test_presets.py checks against the meta-device count.
HUB_PRESETS: dict[str, HubArchitecture] = {
    # 1.24B (1,235,814,400): GQA 32/8 heads, tied embeddings, 128k context (llama3 RoPE scaling).
    "meta-llama/Llama-3.2-1B": HubArchitecture(
        "LlamaConfig",
        dict(
            vocab_size=128256,
            hidden_size=2048,
            intermediate_size=8192,
            num_hidden_layers=16,
            num_attention_heads=32,
            num_key_value_heads=8,
            head_dim=64,
            tie_word_embeddings=True,
            max_position_embeddings=131072,
            bos_token_id=128000,
            eos_token_id=128001,
        ),
    ),
    # 8.03B (8,030,261,248): GQA 32/8 heads, untied embeddings, 128k context.
    "meta-llama/Llama-3.1-8B": HubArchitecture(
        "LlamaConfig",
        dict(
            vocab_size=128256,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            tie_word_embeddings=False,
            max_position_embeddings=131072,
            bos_token_id=128000,
            eos_token_id=128001,
        ),
    ),
    # 6.74B (6,738,415,616): multi-head attention (no GQA), untied embeddings, 4k context.
    "meta-llama/Llama-2-7b-hf": HubArchitecture(
        "LlamaConfig",
        dict(
            vocab_size=32000,
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            tie_word_embeddings=False,
            max_position_embeddings=4096,
            bos_token_id=1,
            eos_token_id=2,
        ),
    ),
    # 7.24B (7,241,732,096): Llama-3-8B-like blocks with a 32k vocabulary; sliding window 4096 of 32k.
    "mistralai/Mistral-7B-v0.1": HubArchitecture(
        "MistralConfig",
        dict(
            vocab_size=32000,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            tie_word_embeddings=False,
            max_position_embeddings=32768,
            sliding_window=4096,
            bos_token_id=1,
            eos_token_id=2,
        ),
    ),
    # 0.49B (494,032,768): bias on q/k/v (Qwen2 always has it), GQA 14/2, tied embeddings; the
    # embedding has 151,936 rows, more than the tokenizer's 151,665 tokens (padded for efficiency).
    "Qwen/Qwen2.5-0.5B": HubArchitecture(
        "Qwen2Config",
        dict(
            vocab_size=151936,
            hidden_size=896,
            intermediate_size=4864,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            tie_word_embeddings=True,
            max_position_embeddings=32768,
            bos_token_id=151643,
            eos_token_id=151643,
        ),
    ),
    # 7.62B (7,615,616,512): q/k/v bias, GQA 28/4, untied embeddings of 152,064 rows, 128k positions.
    "Qwen/Qwen2.5-7B": HubArchitecture(
        "Qwen2Config",
        dict(
            vocab_size=152064,
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            tie_word_embeddings=False,
            max_position_embeddings=131072,
            bos_token_id=151643,
            eos_token_id=151643,
        ),
    ),
    # 2.61B (2,614,341,888): head_dim 256 (8 x 256 = 2048 != hidden 2304), four norms per layer, a
    # 256k vocabulary tied to the output; 8k context, local layers with a 4096 window.
    "google/gemma-2-2b": HubArchitecture(
        "Gemma2Config",
        dict(
            vocab_size=256000,
            hidden_size=2304,
            intermediate_size=9216,
            num_hidden_layers=26,
            num_attention_heads=8,
            num_key_value_heads=4,
            head_dim=256,
            query_pre_attn_scalar=256,
            tie_word_embeddings=True,
            max_position_embeddings=8192,
            sliding_window=4096,
            pad_token_id=0,
            eos_token_id=1,
            bos_token_id=2,
        ),
    ),
    # 3.82B (3,821,079,552): fused qkv_proj and gate_up_proj, multi-head attention, untied 32,064-row
    # embeddings, 4k context.
    "microsoft/Phi-3-mini-4k-instruct": HubArchitecture(
        "Phi3Config",
        dict(
            vocab_size=32064,
            hidden_size=3072,
            intermediate_size=8192,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            tie_word_embeddings=False,
            max_position_embeddings=4096,
            original_max_position_embeddings=4096,
            sliding_window=2047,
            bos_token_id=1,
            eos_token_id=32000,
            pad_token_id=32000,
        ),
    ),
}
