"""What the boundary hands every command: one value with the validated config and what chose it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainer.config import TrainConfig


@dataclass(frozen=True)
class Invocation:
    cfg: TrainConfig
    choices: dict[str, str]  # config group -> chosen option (model -> tiny), as composed
    set_on_command_line: tuple[str, ...]  # groups and dotted keys the user's overrides set (not hydra)
    run_dir: Path  # where training with these overrides writes (Hydra's run folder, made absolute)

    def set_besides(self, *prefixes: str) -> list[str]:
        """The command line's groups and keys outside `prefixes` (e.g. everything but infer.*)."""
        return [k for k in self.set_on_command_line if not k.startswith(prefixes)]
