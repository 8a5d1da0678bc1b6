"""Back-of-the-envelope figures for `python -m trainer.plan`: known hub architectures, memory, FLOPs.

Everything here is an estimate for planning (will it fit, how long will it take), not a measurement.
The functions are small and pure (numbers in, numbers out) so they are easy to check by hand; the
only import is transformers, lazily, to turn a preset into a config the meta-device build accepts.

Memory per device for `single` and `ddp` (every rank holds a full replica):

    weights      = frozen params x weight bytes + trainable params x trainable bytes
    gradients    = trainable params x gradient bytes
    optimizer    = trainable params x the optimizer's state bytes  (AdamW: 2 fp32 moments = 8; see config)
    activations  = layers x (34 s b h + 5 a s^2 b) x act_bytes / 2  (Korthikanti et al. 2022, 16-bit)
                   + s b V x 4                                      (the logits, fp32 for the loss)

with s = sequence length, b = micro batch, h = hidden size, a = attention heads, V = vocabulary.
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

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
GiB = 1024**3


def preset_config(hub_id: str) -> Any | None:
    """The transformers config (LlamaConfig, Qwen2Config, ...) of a known hub id, or None when `hub_id` is
    not in HUB_PRESETS."""
    preset = HUB_PRESETS.get(hub_id)
    if preset is None:
        return None
    import transformers

    return getattr(transformers, preset.config_class)(**preset.values)


def weight_bytes(total: int, trainable: int, weight_dtype_bytes: int, trainable_bytes: int) -> int:
    """Bytes of all parameters: frozen ones in the model dtype, trainable ones in `trainable_bytes`.

    Full fine-tuning: pass trainable_bytes = weight_dtype_bytes. LoRA: PEFT keeps adapters in fp32 (4).
    """
    return (total - trainable) * weight_dtype_bytes + trainable * trainable_bytes


def gradient_bytes(trainable: int, grad_dtype_bytes: int) -> int:
    """One gradient per trainable parameter, in the parameter's dtype."""
    return trainable * grad_dtype_bytes


def activation_bytes(
    layers: int,
    hidden: int,
    heads: int,
    vocab: int,
    seq_len: int,
    micro_batch: int,
    act_dtype_bytes: int,
    checkpointing: bool = False,
) -> int:
    """Activations kept for the backward pass of one micro batch (a rough estimate).

    Per transformer layer, Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
    Transformer Models", eq. 1, no tensor parallelism) give 34 s b h + 5 a s^2 b bytes with 16-bit
    activations; it is scaled by act_dtype_bytes / 2 for fp32. With gradient checkpointing only each
    layer's input (2 s b h bytes at 16 bits) is kept, plus one layer recomputed at a time. The logits
    (s b V, upcast to fp32 for the loss) are added on top. Fused attention kernels (sdpa/flash) do not
    store the s^2 attention matrix, so for them the 5 a s^2 b term overestimates.
    """
    s, b, h, a = seq_len, micro_batch, hidden, heads
    per_layer_16bit = 34 * s * b * h + 5 * a * s * s * b
    if checkpointing:
        kept_16bit = layers * 2 * s * b * h + per_layer_16bit
    else:
        kept_16bit = layers * per_layer_16bit
    return kept_16bit * act_dtype_bytes // 2 + s * b * vocab * 4


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per device, by kind."""

    weights: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations


@dataclass(frozen=True)
class Sharding:
    """How many ranks share each kind of state (1 = a full copy per device; 0 = kept on the CPU)."""

    weights: int
    gradients: int
    optimizer: int
    note: str

    def per_device(self, mem: MemoryEstimate) -> MemoryEstimate:
        def part(n: int, ways: int) -> int:
            return 0 if ways == 0 else -(-n // ways)

        return MemoryEstimate(
            weights=part(mem.weights, self.weights),
            gradients=part(mem.gradients, self.gradients),
            optimizer=part(mem.optimizer, self.optimizer),
            activations=mem.activations,
        )


def sharding(parallelism: Any) -> Sharding:
    """The ZeRO arithmetic of each strategy: FSDP with resharding and ZeRO-3 split all three kinds of
    state over the ranks; ZeRO-2 (or FSDP without resharding, which keeps gathered weights between
    forward and backward) splits gradients and optimizer state; ZeRO-1 the optimizer state only.
    Offloaded state lives in CPU memory, shown as 0 on the device."""
    n = parallelism.world_size
    kind = parallelism.strategy
    if kind == "fsdp":
        offload = parallelism.cpu_offload
        w = 0 if offload else (n if parallelism.reshard_after_forward else 1)
        zero = "ZeRO-3-like" if parallelism.reshard_after_forward else "ZeRO-2-like"
        return Sharding(w, n, 0 if offload else n, f"FSDP{parallelism.version} over {n} ranks, {zero}")
    if kind == "deepspeed":
        stage = parallelism.stage
        w = 0 if parallelism.offload_params else (n if stage == 3 else 1)
        g = n if stage >= 2 else 1
        o = 0 if parallelism.offload_optimizer else n
        return Sharding(w, g, o, f"DeepSpeed ZeRO-{stage} over {n} ranks")
    return Sharding(1, 1, 1, f"full replica on each of {n} rank(s), strategy {kind}")


def flops_per_token(total: int, trainable: int, full_finetune: bool) -> tuple[int, str]:
    """Training FLOPs per token (matmuls only, attention's s^2 term ignored), and how it was counted.

    Full fine-tuning: 6 N (2 N forward, 4 N backward: gradients of activations and of weights).
    Frozen base (LoRA): 2 N forward + 2 N backward for activation gradients + 2 x trainable for the
    weight gradients of the adapters only. N counts every parameter, embeddings included.
    """
    if full_finetune:
        return 6 * total, "6 N (full fine-tuning)"
    return 4 * total + 2 * trainable, "2 N forward + 2 N backward (activations) + 2 x trainable (LoRA)"


def human_bytes(n: float) -> str:
    """1536 -> '1.50 KiB'; binary units, as GPU memory is reported."""
    for unit, size in (("TiB", 1024**4), ("GiB", GiB), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def human_count(n: float) -> str:
    """12_345_678 -> '12.35M' (decimal units, like parameter counts and FLOPs are quoted)."""
    for unit, size in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"
