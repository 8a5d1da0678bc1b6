"""The Hydra -> Pydantic boundary: compose output in, frozen `TrainConfig` out.

Nothing past this module sees a DictConfig. It imports omegaconf and the config package only, so a
bad config is reported before torch, lightning or transformers are imported.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from trainer.assets import asset_path
from trainer.config import ConfigError, TrainConfig, validate
from trainer.config.hardware import detect as detect_hardware
from trainer.config.problems import Problem, render
from trainer.errors import EXIT_USER_ERROR, UserError


def register_resolvers() -> None:
    """`${asset:tokenizer}` -> absolute path of a file the project ships."""
    if not OmegaConf.has_resolver("asset"):
        OmegaConf.register_new_resolver("asset", asset_path)


def to_train_config(cfg: DictConfig, runtime: dict[str, Any] | None = None) -> TrainConfig:
    """Resolve once (throwing on `???`), drop Hydra's own node, add launcher facts, validate.

    `runtime` holds values only the launcher knows (e.g. `run.sweep` for multirun jobs); they are set
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
    data["hardware"] = detect_hardware(data.get("hardware"))
    for dotted, value in (runtime or {}).items():
        section, _, leaf = dotted.partition(".")
        data.setdefault(section, {})[leaf] = value
    return validate(data)


def report_and_exit(err: Exception) -> None:
    """Print a user mistake as a short message and exit 2; TRAINER_DEBUG=1 shows the traceback too."""
    if os.environ.get("TRAINER_DEBUG"):
        raise err
    text = render(err.problems) if isinstance(err, ConfigError) else err.render()  # type: ignore[attr-defined]
    print(text, file=sys.stderr)
    print("  (set TRAINER_DEBUG=1 to see the traceback)", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


USER_ERRORS = (ConfigError, UserError)
