"""Loading the tokenizer and model of a `Source` for inference: on the first GPU when there is one."""

from __future__ import annotations

from typing import Any

from trainer.inference.source import Source, check_adapter_base, load_error


def device() -> Any:
    """The first GPU when there is one, else the CPU: inference needs no strategy."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_tokenizer(src: Source) -> Any:
    """The tokenizer saved beside the weights (what training used), or the config's own."""
    from trainer.models import build

    if src.model_dir is None:
        return build.load_tokenizer(src.cfg.model)
    folder = src.model_dir if (src.model_dir / "tokenizer_config.json").exists() else None
    if folder is None:  # an adapter or model folder saved without its tokenizer
        return build.load_tokenizer(src.cfg.model)
    return build.load_tokenizer(src.cfg.model.model_copy(update={"tokenizer": str(folder)}))


def load_model(src: Source, tokenizer: Any) -> Any:
    """The model in eval mode on `device()`: built from the config, a full model, or base + adapter (a
    base embedded in the adapter folder is loaded from there, so a moved run folder loads).

    A run's own folder loads with the run's dtype and attention kernel, so scores match training; a bare
    folder keeps the dtype it was saved in.
    """
    from trainer.models.build import build_model, hf_config
    from trainer.models.dtypes import DTYPES

    if src.model_dir is None:
        model = build_model(src.cfg.model, hf_config(src.cfg.model, tokenizer))
    else:
        run = src.kind == "run"
        kwargs = {
            "dtype": DTYPES[src.cfg.model.dtype] if run else "auto",
            **({"attn_implementation": src.cfg.model.attn_implementation} if run else {}),
        }
        try:
            if src.is_adapter:
                from trainer.models.adapter_folder import load_adapter

                check_adapter_base(src)
                model = load_adapter(src.model_dir, **kwargs)
            else:
                from transformers import AutoModelForCausalLM

                model = AutoModelForCausalLM.from_pretrained(src.model_dir, **kwargs)
        except (OSError, ValueError, ImportError) as err:  # ImportError: e.g. flash-attn not installed
            raise load_error(src, err) from None
    return model.to(device()).eval()
