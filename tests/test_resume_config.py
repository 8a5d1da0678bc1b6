"""A resume checks the config against the checkpoint's record: a change to what is trained is refused
with the differences and the switch, before any data is prepared, and loses nothing; the step budget
may change; a complete run says so; a failed resume never writes over the last good checkpoint."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import load_config, run_cli
from trainer.assets import asset_path
from trainer.training.run_record import training_keys

pytestmark = pytest.mark.slow


def test_training_keys_leave_out_budget_periods_and_places(tmp_path: Path) -> None:
    keys = training_keys(load_config(run_dir=tmp_path))
    for kept in ("model.architecture.hidden_size", "optimizer.lr", "data.global_batch", "run.seed"):
        assert kept in keys, kept
    for free in ("trainer.max_steps", "trainer.log_every", "run.name", "tracker.kind", "data.num_workers"):
        assert free not in keys, free
    assert not [k for k in keys if k.startswith("data.datasets.") and k.endswith(".path")]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_changed_config_is_refused_and_the_run_is_intact(tmp_path: Path, quick_overrides) -> None:
    data = tmp_path / "train.json"
    data.write_bytes(Path(asset_path("data/tiny_tasks/train.json")).read_bytes())
    path = f"data.datasets.tiny_tasks.path={data}"
    args = [*quick_overrides, "tracker=none", "trainer.threads=1", "run.name=long", path]
    first = run_cli(args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "outputs" / "default" / "long"
    last, config = run / "checkpoints" / "last.ckpt", (run / "config.yaml").read_text()
    before = _digest(last)

    again = run_cli(args, cwd=tmp_path)  # the same command: complete, nothing trained
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[trainer] run default/long is already complete (step 12 of 12); model:" in again.stdout
    assert "step 1/" not in again.stdout + again.stderr and _digest(last) == before

    fresh_cache = tmp_path / "fresh-cache"  # data prepared by the refused command would be cached here
    changes = ["model.architecture.hidden_size=64", "optimizer.lr=1e-3", f"data.cache_dir={fresh_cache}"]
    changed = run_cli([*args, *changes], cwd=tmp_path)
    assert changed.returncode == 2, changed.stderr[-3000:]
    assert "run.resume: this config differs from the one checkpoint" in changed.stderr
    diff = "    model.architecture.hidden_size: 128 -> 64\n    optimizer.lr: 0.002 -> 0.001\n"
    assert diff in changed.stderr
    assert "run.resume_changed=allow" in changed.stderr and "Traceback" not in changed.stderr
    assert not fresh_cache.exists()  # refused before any data was prepared
    lora = run_cli([*args, "peft=lora"], cwd=tmp_path)
    assert lora.returncode == 2 and 'peft.method: "none" -> "lora"' in lora.stderr, lora.stderr[-3000:]
    assert _digest(last) == before and (run / "config.yaml").read_text() == config
    assert (run / "train.log").read_text().rstrip().endswith("or resume anyway with run.resume_changed=allow")

    # Forced through: the optimizer state does not fit a LoRA model. Nothing trained, nothing saved (a
    # save-on-exception checkpoint of the LoRA model used to replace last.ckpt here).
    forced = run_cli([*args, "peft=lora", "run.resume_changed=allow", "trainer.max_steps=18"], cwd=tmp_path)
    assert forced.returncode != 0 and "parameter group that doesn't match" in forced.stderr
    assert "resuming with a changed config (run.resume_changed=allow): peft.alpha" in forced.stderr
    assert 'peft.method: "none" -> "lora"' in forced.stderr
    assert _digest(last) == before

    original = data.read_text()
    data.write_text(original.replace('"output": "', '"output": "x', 1))  # one record edited
    edited = run_cli([*args, "trainer.max_steps=18"], cwd=tmp_path)
    assert edited.returncode == 2, edited.stderr[-3000:]
    assert "run.resume: the training data changed since the checkpoint (step 12) was written" in edited.stderr
    data.write_text(original)
    longer = run_cli([*args, "trainer.max_steps=18"], cwd=tmp_path)  # the budget may change
    assert longer.returncode == 0, longer.stderr[-3000:]
    assert f"Resuming from {last}" in longer.stderr and _digest(last) != before
