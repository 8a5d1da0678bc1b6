"""A full disk mid-run: one line naming the file, exit 2, and the newest complete checkpoint intact (no
corrupt or partial file left as the newest). A real small tmpfs where the machine lets us mount one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli, tmpfs

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """24 MB: the run's first two checkpoints (10 MB each) fit, the third does not."""
    with tmpfs(tmp_path / "small", "size=24m") as folder:
        yield folder


def test_a_full_disk_is_one_line_and_leaves_the_last_checkpoint_whole(
    small_disk: Path, tmp_path: Path
) -> None:
    args = [
        f"run.output_root={small_disk}", "run.name=full", "tracker=none", "trainer.max_steps=18",
        "trainer.checkpoint_every=6", "trainer.val_every=disable", "trainer.progress_bar=false",
        "trainer.threads=1", "data.datasets.tiny_tasks.count=600",
    ]  # fmt: skip
    run = run_cli(args, cwd=tmp_path)
    folder = small_disk / "default" / "full" / "checkpoints"
    assert run.returncode == 2, run.stderr[-3000:]
    assert f"trainer: error: cannot write {folder / 'step-000012.ckpt'}: the disk is full" in run.stderr
    assert "Traceback" not in run.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt", "step-000006.ckpt"]
    assert torch.load(folder / "last.ckpt", weights_only=False)["global_step"] == 6
