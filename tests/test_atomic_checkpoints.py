"""Checkpoints are replaced atomically, and resume takes the newest complete one.

A kill or a full disk in the middle of a save must leave the previous checkpoint whole; a truncated or
empty `last.ckpt` (from before this fix, or another tool) is passed over for the newest complete periodic
checkpoint; a named checkpoint that cannot be loaded is one line, not a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from tests.conftest import load_config, run_cli
from trainer.errors import UserError
from trainer.training import checkpoints
from trainer.training.checkpoints import AtomicCheckpointIO, complete, resume_checkpoint


def test_a_failed_save_leaves_the_old_checkpoint_whole(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "w": torch.ones(1000)}, target)
    before = target.read_bytes()

    def dies_midway(obj, f, *args, **kwargs):  # a full disk or a kill after part of the bytes
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", dies_midway)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"step": 2, "w": torch.zeros(1000)}, target)
    assert target.read_bytes() == before and complete(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]  # no partial file left
    assert torch.load(target, weights_only=False)["step"] == 1


def test_resume_passes_over_an_incomplete_last_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    io = AtomicCheckpointIO()
    for step in (5, 10):
        io.save_checkpoint({"step": step}, run / "checkpoints" / f"step-{step:06d}.ckpt")
    io.save_checkpoint({"step": 10}, run / "checkpoints" / "last.ckpt")
    cfg = load_config(run_dir=run)
    assert resume_checkpoint(cfg, run) == str(run / "checkpoints" / "last.ckpt")
    last = (run / "checkpoints" / "last.ckpt").read_bytes()
    (run / "checkpoints" / "last.ckpt").write_bytes(last[: len(last) // 2])  # truncated
    assert resume_checkpoint(cfg, run) == str(run / "checkpoints" / "step-000010.ckpt")
    (run / "checkpoints" / "step-000010.ckpt").write_bytes(b"")  # empty
    assert resume_checkpoint(cfg, run) == str(run / "checkpoints" / "step-000005.ckpt")


def test_a_named_incomplete_checkpoint_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "half.ckpt"
    bad.write_bytes(b"PK\x03\x04 not all of it")
    cfg = load_config([f"run.resume={bad}"], run_dir=tmp_path / "run")
    with pytest.raises(UserError, match=re.escape(f"run.resume={bad}: not a complete checkpoint")):
        resume_checkpoint(cfg, tmp_path / "run")


@pytest.mark.slow
def test_a_run_resumes_from_the_newest_complete_checkpoint(tmp_path: Path, quick_overrides) -> None:
    """End to end: last.ckpt truncated as a cross-filesystem move left it; the rerun resumes from the
    periodic checkpoint at step 6, warns, and finishes."""
    args = [*quick_overrides, "tracker=none", "trainer.export_model=false", "run.name=cut"]
    first = run_cli([*args, "trainer.max_steps=12"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    folder = tmp_path / "outputs" / "default" / "cut" / "checkpoints"
    last = (folder / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(last[: len(last) // 14])  # as a kill mid-copy left it
    (folder / "step-000012.ckpt").unlink()
    again = run_cli([*args, "trainer.max_steps=18"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "is incomplete (truncated or empty): not resuming from it" in again.stderr
    assert f"Resuming from {folder / 'step-000006.ckpt'}" in again.stderr
    assert torch.load(folder / "last.ckpt", weights_only=False)["global_step"] == 18


def test_a_sharded_checkpoint_is_swapped_in_whole_and_an_interrupted_swap_is_undone(tmp_path: Path) -> None:
    from trainer.parallel.atomic import restore_interrupted, swap_in

    folder = tmp_path / "checkpoints"
    (folder / "last.ckpt").mkdir(parents=True)
    (folder / "last.ckpt" / "shard").write_text("old")
    (folder / "last.ckpt.partial").mkdir()
    (folder / "last.ckpt.partial" / "shard").write_text("new")
    swap_in(folder / "last.ckpt.partial", folder / "last.ckpt")
    assert (folder / "last.ckpt" / "shard").read_text() == "new"
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]
    # Killed between the two renames: the old one aside, none in place; and a half-written partial.
    (folder / "last.ckpt").rename(folder / "last.ckpt.old")
    (folder / "step-000004.ckpt.partial").mkdir()
    undone = sorted(p.name for p in restore_interrupted(folder))
    assert undone == ["last.ckpt.old", "step-000004.ckpt.partial"]
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]
    assert (folder / "last.ckpt" / "shard").read_text() == "new"
