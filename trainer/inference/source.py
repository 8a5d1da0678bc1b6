"""Where the model of `trainer generate`, `evaluate` and `merge` comes from: `infer.source`.

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
from typing import Literal

from trainer.boundary import Invocation, from_run_folder
from trainer.config import TrainConfig
from trainer.config.paths import looks_local
from trainer.errors import UserError, first_line

SOURCE_HINT = "give a run folder (outputs/<experiment>/<run>), a model folder or a PEFT adapter folder"

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


def resolve_source(inv: Invocation) -> Source:
    """Classify `infer.source` and load a run's config; every unusable folder is a UserError."""
    cfg = inv.cfg
    given = cfg.infer.source
    if given is None:
        return Source(cfg, "config", None)
    path = Path(given).expanduser().resolve()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "no such folder"
        raise UserError(f"infer.source={given}: {what}", hint=SOURCE_HINT)
    if (path / "config.yaml").is_file():
        return _run_source(inv, path)
    if (path / "adapter_config.json").is_file():
        return Source(cfg, "adapter", path)
    if (path / "config.json").is_file():
        return Source(cfg, "model", path)
    raise UserError(
        f"infer.source={given}: not a run, model or adapter folder "
        "(it has no config.yaml, config.json or adapter_config.json)",
        hint=SOURCE_HINT,
    )


def _run_source(inv: Invocation, run_dir: Path) -> Source:
    cfg = inv.cfg
    others = inv.set_besides("infer.")
    if others:
        raise UserError(
            f"infer.source={cfg.infer.source} is a run folder, which brings its own config; "
            f"{', '.join(others)} set on the command line would not change it",
            hint=f"drop them, or use infer.source={run_dir / 'model'} to apply them to the composed config",
        )
    model_dir = run_dir / "model"
    if not model_dir.is_dir():
        raise UserError(
            f"infer.source={cfg.infer.source}: the run has no model/ folder (trained with "
            "trainer.export_model=false, or not finished)",
            hint="export it by training with trainer.export_model=true, or give a model folder",
        )
    infer = cfg.infer.model_dump(mode="json")
    run_cfg = from_run_folder(run_dir, infer, f"infer.source={cfg.infer.source}")
    return Source(run_cfg, "run", model_dir, run_dir)


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
    """An adapter is only half a model: its base must be in its folder, or be named and, when it is a
    path, exist."""
    import json

    from trainer.models.adapter_folder import embeds_base

    assert src.model_dir is not None
    if embeds_base(src.model_dir):
        return
    config = json.loads((src.model_dir / "adapter_config.json").read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise UserError(
            f"infer.source={src.cfg.infer.source}: the adapter names no base model "
            "(base_model_name_or_path is null), so there are no base weights to load it on",
            hint="set base_model_name_or_path in its adapter_config.json to the base model's folder or "
            "hub id (runs on a from-scratch model save theirs in <run>/model, beside the adapter)",
        )
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
