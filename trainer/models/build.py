"""Build tokenizers and plain Hugging Face causal LMs from `ModelConfig`.

Hub ids and local folders go through the same `from_pretrained` calls; when the hub cannot be reached
the error says how to point at a local folder instead. Models stay plain HF modules: parallelism and
precision are applied by the strategy, not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from trainer.config.model import ModelConfig
from trainer.errors import UserError
from trainer.hub import download_hint, looks_local, require_hub

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _check_source(key: str, source: str) -> None:
    if not looks_local(source):
        require_hub(source, key)


def _hub_error(key: str, source: str, err: Exception) -> UserError:
    first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
    if Path(source).expanduser().exists():
        return UserError(f"{key}={source}: could not load this folder ({type(err).__name__}: {first})")
    return UserError(
        f"{key}={source}: not a local folder, and the Hugging Face hub could not provide it "
        f"({type(err).__name__}: {first})",
        hint=download_hint(key, source),
    )


def load_tokenizer(cfg: ModelConfig) -> Any:
    from transformers import AutoTokenizer

    key = "model.tokenizer" if cfg.tokenizer else "model.name_or_path"
    _check_source(key, cfg.tokenizer_source)
    try:
        tok = AutoTokenizer.from_pretrained(cfg.tokenizer_source, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as err:
        raise _hub_error(key, cfg.tokenizer_source, err) from None
    if tok.pad_token_id is None:  # Llama-family tokenizers ship none; padding is masked out anyway
        tok.pad_token = tok.eos_token
    return tok


def hf_config(cfg: ModelConfig, tokenizer: Any) -> Any:
    """The transformers config of the model to train: built from `architecture`, or read from the source."""
    if cfg.architecture is not None and cfg.from_scratch:
        from transformers import LlamaConfig

        arch = cfg.architecture.model_dump(exclude={"family"})
        return LlamaConfig(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **arch,
        )
    from transformers import AutoConfig

    _check_source("model.name_or_path", str(cfg.name_or_path))
    try:
        return AutoConfig.from_pretrained(cfg.name_or_path, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as err:
        raise _hub_error("model.name_or_path", str(cfg.name_or_path), err) from None


def quantization_config(cfg: ModelConfig) -> Any:
    """bitsandbytes settings for `model.quantize`, or None. 4-bit is the QLoRA recipe: NF4 (or FP4) storage,
    bf16 compute, and double quantization (the quantization constants quantized too, ~0.4 bit/param)."""
    if cfg.quantize is None:
        return None
    from transformers import BitsAndBytesConfig

    if cfg.quantize == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.quantize,
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )


def _quantized_placement() -> dict[str, Any]:
    """bitsandbytes quantizes as weights reach the GPU, so a quantized model is loaded straight onto this
    rank's GPU (Lightning has selected it by the time `configure_model` runs), not onto the CPU first."""
    return {"device_map": {"": torch.cuda.current_device()}}


def build_model(cfg: ModelConfig, config: Any) -> Any:
    """Random init (from_scratch) or pretrained weights, as a plain `*ForCausalLM`."""
    from transformers import AutoModelForCausalLM

    kwargs = dict(attn_implementation=cfg.attn_implementation, trust_remote_code=cfg.trust_remote_code)
    if cfg.from_scratch:
        model = AutoModelForCausalLM.from_config(config, dtype=DTYPES[cfg.dtype], **kwargs)
    else:
        quantization = quantization_config(cfg)
        if quantization is not None:  # the rules allow it only for pretrained weights on CUDA
            kwargs.update(quantization_config=quantization, **_quantized_placement())
        try:
            model = AutoModelForCausalLM.from_pretrained(cfg.name_or_path, dtype=DTYPES[cfg.dtype], **kwargs)
        except (OSError, ValueError) as err:
            raise _hub_error("model.name_or_path", str(cfg.name_or_path), err) from None
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model
