"""`python -m trainer` / `trainer`: compose -> validate -> train, the one flow.

The Hydra task function does exactly that and returns the final validation loss, so sweepers can
optimise it. User mistakes (bad config, missing file, hub unreachable) exit 2 with a short message.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from trainer.boundary import USER_ERRORS, register_resolvers, report_and_exit, to_train_config
from trainer.config import ConfigError
from trainer.hub import preflight
from trainer.overrides import check as check_overrides
from trainer.quiet_entry import CONF_DIR

register_resolvers()


def _launcher_facts() -> dict[str, Any]:
    """Multirun jobs get `run.sweep` (sweep folder name and job index) to tag their tracker runs."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return {}
    return {"run.sweep": {"id": Path(hc.sweep.dir).name, "job": int(hc.job.num)}}


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
def hydra_main(cfg: DictConfig) -> float | None:
    try:
        train_cfg = to_train_config(cfg, _launcher_facts())
        model = train_cfg.model
        preflight(
            {
                "model.name_or_path": None if model.from_scratch else model.name_or_path,
                "model.tokenizer": model.tokenizer,
                **train_cfg.data.paths(),
            }
        )
        from trainer.train import train  # heavy imports only once the config is known to be good

        return train(train_cfg).val_loss
    except USER_ERRORS as err:
        report_and_exit(err)
    return None


# `trainer <command> <overrides>`: the commands that share the composed config but do not train.
COMMANDS = {
    "plan": "trainer.plan",
    "preprocess": "trainer.preprocess",
    "generate": "trainer.generate",
    "evaluate": "trainer.evaluate",
    "merge": "trainer.merge",
}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
        import importlib

        command = sys.argv.pop(1)
        importlib.import_module(COMMANDS[command]).main()
        return
    problems = check_overrides(sys.argv[1:], Path(CONF_DIR))
    if problems:
        report_and_exit(ConfigError(problems))
    hydra_main()


if __name__ == "__main__":
    main()
