"""Progress in a terminal: the rich bar's label follows the optimizer step, and no plain step lines are
printed there (they are for logs and pipes: tests/test_cli.py). The terminal is a real pseudo-terminal
made by util-linux `script`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli_env

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux `script` for a pseudo-terminal")
def test_the_bar_label_follows_the_step_in_a_terminal(tmp_path: Path) -> None:
    args = [
        "trainer.max_steps=30",
        "trainer.val_every=disable",
        "trainer.val_at_start=false",
        "trainer.checkpoint_every=disable",
        "trainer.save_last=false",
        "trainer.export_model=false",
        "tracker=none",
        f"run.output_root={tmp_path}",
    ]
    command = " ".join([sys.executable, "-m", "trainer", *args])
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        timeout=300,
    )
    out = done.stdout.decode("utf-8", errors="replace")
    assert done.returncode == 0, out[-3000:]
    labels = {int(n) for n in re.findall(r"epoch 0 step (\d+)/30", out)}
    assert 30 in labels and len(labels) >= 10, sorted(labels)  # was "step 0/30" for the whole run
    assert not re.search(r"^step \d+/30 ", out, re.M)  # the plain lines stay out of a terminal
    assert "loss" in out and "v_num" not in out  # the metrics shown, without Lightning's logger version
