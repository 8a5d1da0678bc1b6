"""Checkpoints of the sharded strategies (FSDP2, FSDP1, DeepSpeed) replaced whole, as single files are
(trainer/training/checkpoints.py `AtomicCheckpointIO`, which these strategies do not use).

Why: these strategies write a checkpoint folder in place, every rank its shards: a kill or a full disk
during the save of `last.ckpt` left a folder holding the old `.metadata` over half-new shards. Here
every rank writes into `<name>.partial`; once all have finished (a barrier), rank 0 moves the old
checkpoint aside to `<name>.old`, the new one into place, and deletes the old one. A kill between the
two renames leaves `<name>.old` whole, which `restore_interrupted` puts back at the next start.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

PARTIAL, OLD = ".partial", ".old"


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def swap_in(partial: Path, target: Path) -> None:
    """Put a whole new checkpoint (file or folder) where the old one was."""
    old = target.with_name(target.name + OLD)
    _remove(old)
    if target.exists():
        os.replace(target, old)
    os.replace(partial, target)
    _remove(old)


def restore_interrupted(folder: Path) -> list[Path]:
    """After a kill: an old checkpoint moved aside but not replaced goes back; partial saves go."""
    touched = []
    for old in folder.glob(f"*{OLD}"):
        target = old.with_name(old.name.removesuffix(OLD))
        if target.exists():
            _remove(old)
        else:
            os.replace(old, target)
        touched.append(old)
    for partial in folder.glob(f"*{PARTIAL}"):
        _remove(partial)
        touched.append(partial)
    return touched


def whole_saves(strategy_class: type) -> type:
    """`strategy_class` with a `save_checkpoint` that writes beside the target and swaps it in."""

    class WholeSaves(strategy_class):  # type: ignore[misc, valid-type]
        def save_checkpoint(
            self, checkpoint: dict[str, Any], filepath: Any, storage_options: Any = None
        ) -> None:
            target = Path(self.broadcast(str(filepath)))
            partial = target.with_name(target.name + PARTIAL)
            if self.is_global_zero:
                target.parent.mkdir(parents=True, exist_ok=True)
                _remove(partial)  # a killed attempt's
            self.barrier("checkpoint-partial")
            super().save_checkpoint(checkpoint, partial, storage_options)
            self.barrier("checkpoint-written")
            if self.is_global_zero and partial.exists():
                swap_in(partial, target)
            self.barrier("checkpoint-in-place")

    WholeSaves.__name__ = WholeSaves.__qualname__ = strategy_class.__name__
    return WholeSaves
