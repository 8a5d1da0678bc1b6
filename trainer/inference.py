"""What `trainer generate`, `trainer evaluate` and `trainer merge` share: where the model comes from.

`infer.source` is one of
- a run folder (it has `config.yaml`): the run's own validated config is used (its model settings, data,
  seed, format, chat template and tracker) with the `infer:` keys of this command line, and `model/` holds
  the weights. Other overrides are refused rather than ignored: they could not change the run's config,
  and a data override that silently did nothing would score the wrong data;
- a model folder (`config.json`) or a PEFT adapter folder (`adapter_config.json`): those weights, with
  the composed config for everything else (data, format, tracker), so overrides work as in training;
- null: the composed config's own model, built as training builds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from trainer.config import ConfigError, TrainConfig, validate
from trainer.errors import UserError, first_line

SOURCE_HINT = "give a run folder (outputs/<experiment>/<run>), a model folder or a PEFT adapter folder"
# Overrides that do not change the training config: allowed with a run folder as the source.
_OWN_PREFIXES = ("infer.", "+infer.", "++infer.", "hydra.", "hydra/", "-")

Kind = Literal["run", "model", "adapter", "config"]


@dataclass(frozen=True)
class Source:
    cfg: TrainConfig  # the run's config (with this command's infer:) or the composed one
    kind: Kind
    model_dir: Path | None  # the weights: <run>/model or the folder given; None = build from cfg.model
    run_dir: Path | None = None

    @property
    def is_adapter(self) -> bool:
        return self.model_dir is not None and (self.model_dir / "adapter_config.json").exists()

    @property
    def label(self) -> str:
        return str(self.run_dir or self.model_dir or "the config's model")


def resolve_source(cfg: TrainConfig, args: list[str]) -> Source:
    """Classify `infer.source` and load a run's config; every unusable folder is a UserError."""
    given = cfg.infer.source
    if given is None:
        return Source(cfg, "config", None)
    path = Path(given).expanduser().resolve()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "no such folder"
        raise UserError(f"infer.source={given}: {what}", hint=SOURCE_HINT)
    if (path / "config.yaml").is_file():
        return _run_source(cfg, path, args)
    if (path / "adapter_config.json").is_file():
        return Source(cfg, "adapter", path)
    if (path / "config.json").is_file():
        return Source(cfg, "model", path)
    raise UserError(
        f"infer.source={given}: not a run, model or adapter folder "
        "(it has no config.yaml, config.json or adapter_config.json)",
        hint=SOURCE_HINT,
    )


def _run_source(composed: TrainConfig, run_dir: Path, args: list[str]) -> Source:
    others = [a for a in args if not a.startswith(_OWN_PREFIXES)]
    if others:
        raise UserError(
            f"infer.source={composed.infer.source} is a run folder, which brings its own config; "
            f"{' '.join(others)} would not change it",
            hint=f"drop them, or use infer.source={run_dir / 'model'} to apply them to the composed config",
        )
    model_dir = run_dir / "model"
    if not model_dir.is_dir():
        raise UserError(
            f"infer.source={composed.infer.source}: the run has no model/ folder (trained with "
            "trainer.export_model=false, or not finished)",
            hint="export it by training with trainer.export_model=true, or give a model folder",
        )
    try:
        data = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        data = err
    if not isinstance(data, dict):
        raise UserError(
            f"infer.source={composed.infer.source}: its config.yaml cannot be read as a run config "
            f"({first_line(data) if isinstance(data, BaseException) else 'not a mapping'})",
            hint=f"use infer.source={model_dir} with the overrides the run was trained with",
        )
    data["infer"] = composed.infer.model_dump(mode="json")
    try:
        cfg = validate(data)
    except ConfigError as err:
        raise UserError(
            f"infer.source={composed.infer.source}: its config.yaml does not validate with this version "
            f"({err.problems[0].render().strip()})",
            hint=f"use infer.source={model_dir} with the overrides the run was trained with",
        ) from None
    return Source(_anchor_output_root(cfg, run_dir), "run", model_dir, run_dir)


def _anchor_output_root(cfg: TrainConfig, run_dir: Path) -> TrainConfig:
    """A relative `run.output_root` meant the folder training started in: find it again as the ancestor of
    the run folder that ends with it, so the MLflow store is found from any working folder."""
    root = Path(cfg.run.output_root)
    if root.is_absolute():
        return cfg
    for ancestor in run_dir.parents:
        if ancestor.parts[-len(root.parts) :] == root.parts:
            return cfg.model_copy(update={"run": cfg.run.model_copy(update={"output_root": str(ancestor)})})
    return cfg


def require_adapter(src: Source) -> Path:
    """The adapter folder of `src`, with a base model it can be loaded on; anything else cannot be merged."""
    if src.model_dir is None or not src.is_adapter:
        what = "no infer.source" if src.model_dir is None else f"{src.model_dir} holds a full model"
        raise UserError(
            f"infer.source={src.cfg.infer.source}: merge needs a PEFT adapter ({what}: nothing to merge)",
            hint="give a run trained with peft=lora, or its model/ folder (with adapter_config.json)",
        )
    check_adapter_base(src)
    return src.model_dir


def check_adapter_base(src: Source) -> None:
    """An adapter is only half a model: its base must be named and, when it is a path, exist."""
    import json

    assert src.model_dir is not None
    config = json.loads((src.model_dir / "adapter_config.json").read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise UserError(
            f"infer.source={src.cfg.infer.source}: the adapter names no base model "
            "(base_model_name_or_path is null), so there are no base weights to load it on",
            hint="set base_model_name_or_path in its adapter_config.json to the base model's folder or "
            "hub id (runs on a from-scratch model save theirs in <run>/model/base)",
        )
    from trainer.hub import looks_local

    if looks_local(base) and not Path(base).expanduser().exists():
        raise UserError(
            f"infer.source={src.cfg.infer.source}: the adapter's base model {base} does not exist",
            hint=f"put the base model back at {base}, or edit base_model_name_or_path in adapter_config.json",
        )


def load_error(src: Source, err: Exception, what: str = "load") -> UserError:
    """A folder that transformers or peft could not load (or merge), as one line."""
    first = first_line(err)
    return UserError(
        f"infer.source={src.cfg.infer.source}: could not {what} {src.model_dir} "
        f"({type(err).__name__}: {first})",
        hint=SOURCE_HINT,
    )


def quiet_libraries() -> None:
    """Progress bars and warnings of the libraries that say nothing actionable to a user of these commands."""
    import os
    import warnings

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
    if not torch.cuda.is_available():  # save_pretrained imports deepspeed, which warns while guessing
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


# --- loading -----------------------------------------------------------------------------------------


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
    """The model in eval mode on `device()`: built from the config, a full model, or base + adapter.

    A run's own folder loads with the run's dtype and attention kernel, so scores match training; a bare
    folder keeps the dtype it was saved in.
    """
    from trainer.models.build import DTYPES, build_model, hf_config

    quiet_libraries()
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
                from peft import AutoPeftModelForCausalLM

                check_adapter_base(src)
                model = AutoPeftModelForCausalLM.from_pretrained(src.model_dir, **kwargs)
            else:
                from transformers import AutoModelForCausalLM

                model = AutoModelForCausalLM.from_pretrained(src.model_dir, **kwargs)
        except (OSError, ValueError, ImportError) as err:  # ImportError: e.g. flash-attn not installed
            raise load_error(src, err) from None
    return model.to(device()).eval()
