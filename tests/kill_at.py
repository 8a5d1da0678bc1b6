"""Run `python -m trainer ARGS` and kill it with SIGKILL at a chosen moment (the kill -9 tests).

    python tests/kill_at.py step N ARGS     after optimizer step N (before that step's checkpoint)
    python tests/kill_at.py save N ARGS     inside the Nth checkpoint save, part of the file written
    python tests/kill_at.py val N ARGS      inside the Nth validation (the step-0 baseline is the first)
    python tests/kill_at.py export 0 ARGS   inside the export, after the weights are written

The hooks are test-side patches of this process only; the product has none.
"""

from __future__ import annotations

import os
import signal
import sys

import lightning as L


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _KillAt(L.Callback):
    def __init__(self, mode: str, n: int) -> None:
        self.mode, self.n, self.validations = mode, n, 0

    def on_train_batch_end(self, trainer, *args) -> None:
        if self.mode == "step" and trainer.global_step == self.n:
            _die()

    def on_validation_start(self, trainer, *args) -> None:
        self.validations += 1

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args) -> None:
        middle = min(1, int(trainer.num_val_batches[0]) - 1)  # inside it: a batch done, more to come
        if self.mode == "val" and self.validations == self.n and batch_idx == middle:
            _die()


def main() -> None:
    mode, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    import torch

    import trainer.training.train as train
    from trainer.cli import main as cli

    side = train.side_callbacks
    train.side_callbacks = lambda *a: [*side(*a), _KillAt(mode, n)]
    if mode == "save":
        real, calls = torch.save, [0]

        def save(obj, f, *a, **k):
            calls[0] += 1
            if calls[0] == n and hasattr(f, "write"):
                real(obj, f, *a, **k)
                raw = getattr(f, "f", f)  # the open file under the checkpoint writer's wrapper
                raw.truncate(raw.tell() // 2)  # half of it on disk, then the kill
                raw.flush()
                os.fsync(raw.fileno())
                _die()
            return real(obj, f, *a, **k)

        torch.save = save
    if mode == "export":
        from trainer.training import export

        real_export = export.export_model

        def export_then_die(*a, **k):
            out = real_export(*a, **k)
            _die()
            return out

        export.export_model = export_then_die
    cli(args)


if __name__ == "__main__":
    main()
