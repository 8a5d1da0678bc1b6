"""A run that fails before it trains leaves no run folder behind; the error of a failed run ends its
train.log (and is on the terminal)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_an_invalid_config_leaves_no_run_folder(tmp_path: Path) -> None:
    args = [f"run.output_root={tmp_path / 'outputs'}", "run.name=bad", "data.micro_batch=64"]
    bad = run_cli(args, cwd=tmp_path)
    assert bad.returncode == 2 and "data.micro_batch" in bad.stderr, bad.stderr[-3000:]
    assert not (tmp_path / "outputs" / "default" / "bad").exists()
    assert not list((tmp_path / "outputs").rglob("train.log"))


def test_a_folder_with_a_history_is_kept_and_its_log_ends_with_the_error(tmp_path: Path) -> None:
    run = tmp_path / "outputs" / "default" / "kept"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 half")
    named = f"run.resume={run / 'checkpoints' / 'last.ckpt'}"
    failed = run_cli([f"run.output_root={tmp_path / 'outputs'}", "run.name=kept", named], cwd=tmp_path)
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert "not a complete checkpoint" in failed.stderr
    log = (run / "train.log").read_text().rstrip()
    assert "[trainer][ERROR] run failed: trainer: error: run.resume=" in log
    assert log.endswith("fix: use another checkpoint of " + str(run / "checkpoints") + ", or run.resume=auto "
                        "(the newest complete one)")  # fmt: skip
