"""Build tokenizers and plain Hugging Face causal LMs from `ModelConfig`.

Hub ids and local folders go through the same `from_pretrained` calls; when the hub cannot be reached
the error says how to point at a local folder instead, and when a folder needs its own code (an
`auto_map` in config.json) that trust_remote_code is off, the error says so. Models stay plain HF
modules: parallelism and precision are applied by the strategy, not here. `model.added_tokens` grow the
tokenizer, and `hf_config` grows the config's vocabulary to match, so that `build_model` resizes the
embeddings of pretrained weights (a from-scratch model is sized from the config directly).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from trainer.config.model import ModelConfig
from trainer.errors import UserError, first_line
from trainer.hub import download_hint
from trainer.models.dtypes import DTYPES
from trainer.models.sources import (
    check_model,
    check_tokenizer,
    remote_code_error,
    ships_code,
    tokenizer_key,
)

log = logging.getLogger(__name__)


def _hub_error(key: str, source: str, err: Exception, trust_remote_code: bool = False) -> UserError:
    """transformers' failure, once the folder checks (models/sources.py) found nothing to say: its first
    line, and how to get the model when `source` was not a local folder."""
    first = first_line(err)
    if not trust_remote_code and ships_code(source):
        # transformers refuses custom code it may not run; a missing model_type fails the same way.
        return remote_code_error(key, source)
    if Path(source).expanduser().exists():
        return UserError(
            f"{key}={source}: could not load this folder ({type(err).__name__}: {first})",
            hint="check that it holds what save_pretrained or hf download wrote (files missing, cut short "
            "or edited by hand)",
        )
    return UserError(
        f"{key}={source}: not a local folder, and the Hugging Face hub could not provide it "
        f"({type(err).__name__}: {first})",
        hint=download_hint(key, source),
    )


def is_special_token(token: str) -> bool:
    """`<|im_start|>`-style tokens are control tokens: added as special, so that decoding with
    skip_special_tokens drops them and normalization never splits them."""
    return token.startswith("<|") and token.endswith("|>") and len(token) > 4


def load_tokenizer(cfg: ModelConfig) -> Any:
    from transformers import AutoTokenizer

    key = tokenizer_key(cfg)
    check_tokenizer(cfg)
    try:
        tok = AutoTokenizer.from_pretrained(cfg.tokenizer_source, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as err:
        raise _hub_error(key, cfg.tokenizer_source, err, cfg.trust_remote_code) from None
    if tok.pad_token_id is None:  # Llama-family tokenizers ship none; padding is masked out anyway
        tok.pad_token = tok.eos_token
    for token in cfg.added_tokens:  # one by one: new ids follow the order the user listed them in
        tok.add_tokens([token], special_tokens=is_special_token(token))  # one the vocab has is skipped
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

    check_model(cfg, weights=False)
    try:
        config = AutoConfig.from_pretrained(cfg.name_or_path, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as err:
        raise _hub_error("model.name_or_path", str(cfg.name_or_path), err, cfg.trust_remote_code) from None
    return grow_vocabulary(config, tokenizer)


def grow_vocabulary(config: Any, tokenizer: Any) -> Any:
    """Raise `config.vocab_size` to the tokenizer's length when the tokenizer has more tokens (added
    tokens), so that the config describes the model that will train; never shrink it (Qwen pads its
    embeddings past the tokenizer's length on purpose)."""
    vocab = getattr(config, "vocab_size", None)
    if tokenizer is not None and isinstance(vocab, int) and len(tokenizer) > vocab:
        config.vocab_size = len(tokenizer)
    return config


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


@contextmanager
def seeded(seed: int, enabled: bool) -> Iterator[None]:
    """Build under `seed` without touching the global generators: a from-scratch base that is not saved
    in PEFT checkpoints, or a reference copy of the starting weights, must come out the same on resume
    (and in `trainer evaluate`), whatever ran before the build."""
    if not enabled:
        yield
        return
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


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
        check_model(cfg, weights=True)
        try:
            model = AutoModelForCausalLM.from_pretrained(cfg.name_or_path, dtype=DTYPES[cfg.dtype], **kwargs)
        except (OSError, ValueError) as err:
            source = str(cfg.name_or_path)
            raise _hub_error("model.name_or_path", source, err, cfg.trust_remote_code) from None
        _match_vocabulary(model, getattr(config, "vocab_size", None))
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if cfg.compile:
        # In place (nn.Module.compile): the module, its parameter names and save_pretrained stay as they
        # are; only calls go through the compiled function. Compilation happens at the first forward, so
        # adapters and sharding applied after this are part of what gets compiled. With a chunked loss the
        # training step calls the decoder itself (scoring.chunked_token_loss), so that is what is compiled.
        (model.get_decoder() if cfg.loss_chunk_tokens else model).compile()
    return model


def _match_vocabulary(model: Any, vocab: int | None) -> None:
    """Grow the embeddings (and a separate lm_head) of pretrained weights to `vocab` rows: the size
    `hf_config` gave the config after `model.added_tokens` grew the tokenizer. New rows start at the
    mean of the old ones (transformers' default), so the new tokens begin as an average token."""
    rows = model.get_input_embeddings().weight.shape[0]
    if vocab is not None and vocab > rows:
        log.info("model: the tokenizer has %d tokens: the embeddings grow from %d rows to match", vocab, rows)
        model.resize_token_embeddings(vocab)
