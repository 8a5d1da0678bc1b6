"""An Optuna search (`-m hparams_search=...`) is checked whole before its first trial: its settings under
hydra.sweeper, its search space, and a training config at every corner of the space."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli
from trainer.boundary.search import Dimension, split_args


def _refused(tmp_path: Path, *args: str) -> str:
    proc = run_cli(["-m", "hparams_search=tiny", f"run.output_root={tmp_path / 'out'}", *args], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()  # no sweep folder, no trial
    return proc.stderr


def test_the_command_lines_sweep_values_are_searched_and_the_rest_is_fixed() -> None:
    fixed, swept = split_args(
        ["hparams_search=tiny", "optimizer.lr=interval(1e-4,1e-2)", "peft.r=8,16", "x=1"]
    )
    assert fixed == ["hparams_search=tiny", "x=1"]
    assert swept == {"optimizer.lr": "interval(1e-4,1e-2)", "peft.r": "8,16"}
    assert Dimension("k", "float", 1e-4, 1e-2).corners() == [1e-4, 1e-2]
    assert Dimension("k", "choice", choices=(8, 16, 32)).corners() == [8, 16, 32]


def test_a_corner_of_the_space_that_does_not_validate_refuses_the_search(tmp_path: Path) -> None:
    stderr = _refused(tmp_path, "optimizer.lr=interval(-0.5,0.01)", "data.micro_batch=choice(4,64)")
    assert stderr.startswith(
        "trainer: error: 2 corner(s) of the search space give an invalid config; no trial was started:\n"
    ), stderr
    assert "  optimizer.lr=-0.5:\n    optimizer.lr=-0.5: Input should be greater than 0\n" in stderr, stderr
    assert "  data.micro_batch=64:\n    data.global_batch=32: not divisible by micro_batch 64" in stderr
    assert "0.01" not in stderr and "micro_batch=4:" not in stderr  # the valid corners are not listed
    assert "fix: narrow the ranges named above" in stderr


def test_bad_search_settings_and_space_are_listed_at_once(tmp_path: Path) -> None:
    stderr = _refused(
        tmp_path, "hydra.sweeper.direction=up", "hydra.sweeper.metric=train/loss", "hydra.sweeper.trials=0"
    )
    assert stderr.startswith("trainer: invalid config (3 problems):\n"), stderr
    assert "  hydra.sweeper.metric=train/loss: the objective must be a validation metric" in stderr
    assert "  hydra.sweeper.direction=up: Input should be 'minimize' or 'maximize'" in stderr
    assert "  hydra.sweeper.trials=0: Input should be greater than 0" in stderr
    stderr = _refused(
        tmp_path, "peft=lora", "optimizer.lr=tag(log,interval(0,0.1))", "peft.r=tag(lg,choice(8,16))"
    )
    assert (
        "  optimizer.lr=tag(log,interval(0,0.1)): a log scale needs a low end above 0 (it is 0.0); write"
        in stderr
    )
    assert "  peft.r=tag(lg,choice(8,16)): unknown tag 'lg' (tags: log, int); write interval(a, b)" in stderr


def test_a_search_needs_validation_and_multirun(tmp_path: Path) -> None:
    stderr = _refused(tmp_path, "trainer.val_every=disable")
    assert (
        "  trainer.val_every=disable: the search's objective val/loss is a validation metric; set" in stderr
    )
    proc = run_cli(["hparams_search=tiny", f"run.output_root={tmp_path / 'out'}"], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("trainer: error: hparams_search: a search runs its trials as a sweep"), (
        proc.stderr
    )
    assert "add -m to the command line" in proc.stderr
