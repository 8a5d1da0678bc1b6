"""Back-of-the-envelope figures for `trainer plan`: memory per device and FLOPs per token.

Everything here is an estimate for planning (will it fit, how long will it take), not a measurement.
The functions are small and pure (numbers in, numbers out) so they are easy to check by hand; the
only import is transformers, lazily, to turn a preset (trainer/config/presets.py) into a config the
meta-device build accepts.

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

from trainer.config.presets import HUB_PRESETS

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


# Bytes per weight that bitsandbytes quantizes: 4 bits, plus with double quantization one 8-bit absmax per
# 64-weight block and one fp32 constant per 256 blocks (QLoRA paper, 0.127 bit/param); int8 (LLM.int8):
# one byte, plus an fp32 scale per row (negligible).
QUANTIZED_BYTES = {"nf4": 0.5 + 1 / 64 + 4 / (64 * 256), "fp4": 0.5 + 1 / 64 + 4 / (64 * 256), "int8": 1.0}


def quantized_weight_bytes(total: int, trainable: int, unquantized: int, quantize: str) -> int:
    """Bytes of all parameters of a bitsandbytes-quantized base with adapters.

    bitsandbytes replaces the decoder's linear layers only: the embeddings (the output layer too) and
    the norms, `unquantized` params, stay unquantized, and peft's prepare_model_for_kbit_training casts
    them to fp32 (4 bytes), as it does the adapters (`trainable`)."""
    quantized = max(total - trainable - unquantized, 0)
    return round(quantized * QUANTIZED_BYTES[quantize]) + (unquantized + trainable) * 4


def unquantized_params(model_config: Any) -> int:
    """The parameters bitsandbytes leaves as they are: input embeddings, an untied output layer, norms."""
    vocab, hidden = getattr(model_config, "vocab_size", 0), getattr(model_config, "hidden_size", 0)
    layers = getattr(model_config, "num_hidden_layers", 0)
    tied = getattr(model_config, "tie_word_embeddings", False)
    return vocab * hidden * (1 if tied else 2) + (2 * layers + 1) * hidden


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
    loss_chunk: int | None = None,
) -> int:
    """Activations kept for the backward pass of one micro batch (a rough estimate).

    Per transformer layer, Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
    Transformer Models", eq. 1, no tensor parallelism) give 34 s b h + 5 a s^2 b bytes with 16-bit
    activations; it is scaled by act_dtype_bytes / 2 for fp32. With gradient checkpointing only each
    layer's input (2 s b h bytes at 16 bits) is kept, plus one layer recomputed at a time. The logits
    (s b V, upcast to fp32 for the loss) are added on top. Fused attention kernels (sdpa/flash) do not
    store the s^2 attention matrix, so for them the 5 a s^2 b term overestimates. A chunked loss
    (model.loss_chunk_tokens) holds one chunk's logits at a time instead of all s b of them.
    """
    s, b, h, a = seq_len, micro_batch, hidden, heads
    per_layer_16bit = 34 * s * b * h + 5 * a * s * s * b
    if checkpointing:
        kept_16bit = layers * 2 * s * b * h + per_layer_16bit
    else:
        kept_16bit = layers * per_layer_16bit
    logit_rows = s * b if loss_chunk is None else min(s * b, loss_chunk)
    return kept_16bit * act_dtype_bytes // 2 + logit_rows * vocab * 4


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per device, by kind."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    reference: int = 0  # a frozen reference copy (DPO/KTO with full fine-tuning); not sharded

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.reference


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
            reference=mem.reference,
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
