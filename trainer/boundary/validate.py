"""The one way into `TrainConfig`: a composed DictConfig, or a run folder's saved config.yaml.

Both end in `trainer.config.validate` with this machine's hardware facts (detected now, user values
kept). A composed config is resolved once, throwing on `???`, and Hydra's own node is dropped. A run
folder's config was validated when it trained, maybe on another machine: it is checked again with the
facts of this one, by the rules that matter to using its model (data, model, PEFT), not by those about
how it trained (devices, precision, strategies).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from trainer.config import ConfigError, TrainConfig, validate
from trainer.config.hardware import detect as detect_hardware
from trainer.config.hardware import for_slurm_job, in_slurm_step
from trainer.config.problems import Problem
from trainer.errors import UserError, first_line


def from_composed(cfg: DictConfig, launcher: dict[str, Any] | None = None) -> TrainConfig:
    """Resolve once (throwing on `???`), drop Hydra's own node, add launcher facts, validate.

    `launcher` holds values only the launcher knows (e.g. `run.sweep` for multirun jobs); they are set
    on fields documented as launcher-owned, never on user keys.
    """
    try:
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise ConfigError(
                [
                    Problem(k, "???", "required but not set", f"pass {k}=<value> on the command line")
                    for k in missing
                ]
            )
        data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:  # an interpolation that cannot resolve (env var, bad reference)
        key = getattr(err, "full_key", None) or "<config>"
        message = str(getattr(err, "msg", err)).splitlines()[0]
        raise ConfigError([Problem(key, "<interpolation>", f"could not resolve: {message}")]) from None
    assert isinstance(data, dict)
    data.pop("hydra", None)
    data["hardware"] = _hardware(data)
    for dotted, value in (launcher or {}).items():
        section, _, leaf = dotted.partition(".")
        data.setdefault(section, {})[leaf] = value
    return validate(data)


def _hardware(data: dict[str, Any]) -> dict[str, Any]:
    """This machine's facts; for a Slurm submission (launcher=slurm, not yet inside the job), those of
    the nodes it asks for, so a GPU job can be validated on a login node without GPUs."""
    launcher = data.get("launcher")
    if isinstance(launcher, dict) and launcher.get("kind") == "slurm" and not in_slurm_step():
        return for_slurm_job(data.get("hardware"), launcher)
    return detect_hardware(data.get("hardware"))


def from_run_folder(run_dir: Path, infer: dict[str, Any], key: str) -> TrainConfig:
    """A run folder's config.yaml with this command's `infer:` section and this machine's hardware.

    `key` names the setting that pointed here (infer.source=...), for the messages.
    """
    model_dir = run_dir / "model"
    try:
        data = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        data = err
    if not isinstance(data, dict):
        raise UserError(
            f"{key}: its config.yaml cannot be read as a run config "
            f"({first_line(data) if isinstance(data, BaseException) else 'not a mapping'})",
            hint=f"use infer.source={model_dir} with the overrides the run was trained with",
        )
    data["infer"] = infer
    data["hardware"] = detect_hardware(None)
    try:
        cfg = validate(data, purpose="inference")
    except ConfigError as err:
        raise UserError(
            f"{key}: its config.yaml does not validate with this version on this machine "
            f"({err.problems[0].render().strip()})",
            hint=f"use infer.source={model_dir} with the overrides the run was trained with",
        ) from None
    return _anchor_output_root(cfg, run_dir)


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
