"""Where the model and tokenizer come from, checked by file names before transformers reads them.

transformers' own failures on a folder that holds the wrong things say little ("... is not a valid JSON
file", "Couldn't instantiate the backend tokenizer from one of: "). Listing a folder is cheap and tells
exactly what is missing, so a local source is checked here first: the training command does it before
torch loads, the loaders (models/build.py) again before each `from_pretrained`. A hub id is probed for
reachability instead (trainer/hub.py). Standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path

from trainer.config.model import ModelConfig
from trainer.config.paths import LOCAL_PATH_FIX, looks_local
from trainer.errors import UserError
from trainer.hub import require_hub

# Any one of these may be what AutoTokenizer loads from; a folder with none of them holds no tokenizer.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)
# A single file, or the index of a sharded checkpoint (model-00001-of-00004.safetensors, ...).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def tokenizer_key(cfg: ModelConfig) -> str:
    return "model.tokenizer" if cfg.tokenizer else "model.name_or_path"


def reads_config_json(cfg: ModelConfig) -> bool:
    """Whether `name_or_path` is read for its config.json: pretrained weights, or random init from it."""
    return cfg.name_or_path is not None and not cfg.built_from_architecture


def check_sources(cfg: ModelConfig) -> None:
    """Everything the run will read from the model's sources, checked now (UserError on the first); the
    model first: a folder that holds nothing is better described as not a model than as no tokenizer."""
    if reads_config_json(cfg):
        check_model(cfg, weights=not cfg.from_scratch)
    check_tokenizer(cfg)


def check_tokenizer(cfg: ModelConfig) -> None:
    key, source = tokenizer_key(cfg), cfg.tokenizer_source
    folder = _local_folder(key, source)
    if folder is None or _has_tokenizer(folder):
        return
    if key == "model.name_or_path":  # a model folder without its tokenizer: take it from elsewhere
        fix = "copy the tokenizer files into it, or set model.tokenizer=DIR (a tokenizer folder) or a hub id"
    else:
        fix = "give the folder a tokenizer was saved to (save_pretrained or hf download ID --local-dir DIR)"
    raise UserError(
        f"{key}={source}: no tokenizer files in this folder; a tokenizer folder holds tokenizer.json, or "
        "tokenizer_config.json with tokenizer.model or vocabulary files (vocab.json + merges.txt, vocab.txt)",
        hint=fix,
    )


def check_model(cfg: ModelConfig, *, weights: bool) -> None:
    """The folder of `model.name_or_path` has config.json, and its weights when they are loaded."""
    source = str(cfg.name_or_path)
    folder = _local_folder("model.name_or_path", source)
    if folder is None:
        return
    _not_a_run_or_adapter(folder, source)
    if not (folder / "config.json").is_file():
        raise UserError(
            f"model.name_or_path={source}: no config.json in this folder; a model folder holds config.json "
            "and its weights (model.safetensors or pytorch_model.bin, or shards with their index)",
            hint="give the folder a model was saved to (model.save_pretrained(DIR) or "
            "hf download ID --local-dir DIR)",
        )
    if not cfg.trust_remote_code and ships_code(folder):
        raise remote_code_error("model.name_or_path", source)
    if weights and not any((folder / name).is_file() for name in WEIGHT_FILES):
        scratch = "model.from_scratch=true" + (" model.architecture=null" if cfg.architecture else "")
        raise UserError(
            f"model.name_or_path={source}: no weights in this folder (looked for {', '.join(WEIGHT_FILES)})",
            hint=f"put the model's weights in it; for random init from its config.json, set {scratch}",
        )


def _not_a_run_or_adapter(folder: Path, source: str) -> None:
    """Starting from a trained run (SFT before DPO, say) means its exported model folder, and that
    folder must hold a whole model: an adapter would be trained under a second adapter, or not load."""
    exported = [name for name in ("model_merged", "model") if (folder / name / "config.json").is_file()]
    if exported and (folder / "config.yaml").is_file():
        raise UserError(
            f"model.name_or_path={source}: a run folder, not a model folder",
            hint=f"use its exported model: model.name_or_path={folder / exported[0]}",
        )
    if (folder / "adapter_config.json").is_file():
        raise UserError(
            f"model.name_or_path={source}: a LoRA adapter folder; training starts from a whole model",
            hint="merge it into its base first (trainer merge infer.source=RUN), then use the merged folder "
            "(<run>/model_merged)",
        )


def remote_code_error(key: str, source: str) -> UserError:
    return UserError(
        f"{key}={source}: this model ships its own code (auto_map in config.json); "
        "set model.trust_remote_code=true if you trust it"
    )


def ships_code(source: str | Path) -> bool:
    """Whether `source` is a local folder whose config.json maps the Auto classes to its own code."""
    config = Path(source).expanduser() / "config.json"
    try:
        return bool(json.loads(config.read_text(encoding="utf-8")).get("auto_map"))
    except (OSError, ValueError, AttributeError):
        return False


def _local_folder(key: str, source: str) -> Path | None:
    """The local folder `source` names, or None for a hub id (probed for reachability here); a missing
    path or a file is a UserError that says so."""
    if not looks_local(source):
        require_hub(source, key)
        return None
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError(f"{key}={source}: no such folder", hint=LOCAL_PATH_FIX)
    if not path.is_dir():
        raise UserError(
            f"{key}={source}: a file, not a folder; give the folder that holds it",
            hint=f"use {key}={path.parent}",
        )
    return path


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TOKENIZER_FILES) or any(
        f.suffix in (".model", ".tiktoken") or f.name.startswith("vocab") for f in folder.iterdir()
    )
