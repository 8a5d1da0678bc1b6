"""Exact resume: a run continued from a mid-epoch checkpoint ends where the uninterrupted run ends.

`train()` is called in-process (one import of torch/Lightning for all runs). The uninterrupted run
crosses an epoch boundary (18 batches per epoch) and the resumed one starts 3 batches into epoch 2, so
both the per-epoch order and the position inside an epoch must be restored for the losses to agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import load_config
from trainer.data.sampler import ShardedEpochSampler
from trainer.training.train import train

QUICK = [
    "trainer.val_every=6",
    "trainer.checkpoint_every=3",
    "trainer.progress_bar=false",
    "trainer.export_model=false",
    "data.datasets.tiny_tasks.count=600",
]


def _run(tmp_path: Path, name: str, *extra: str):
    cfg = load_config(
        [*QUICK, f"run.output_root={tmp_path}", f"run.name={name}", *extra], run_dir=tmp_path / name
    )
    return train(cfg)


def test_sampler_is_a_pure_function_of_seed_epoch_and_rank() -> None:
    def order(**kw) -> list[int]:
        args = {"seed": 7, "batch_size": 2, "shuffle": True} | kw
        sampler = ShardedEpochSampler(10, **{k: v for k, v in args.items() if k != "epoch"})
        sampler.set_epoch(kw.get("epoch", 0))
        return list(sampler)

    assert order() == order() and order() != order(epoch=1) and sorted(order()) == list(range(10))
    ranks = [order(rank=r, world_size=2) for r in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1]) and all(len(r) == 4 for r in ranks)  # 5 each, whole batches
    skipped = ShardedEpochSampler(10, seed=7, batch_size=2, shuffle=True, position=lambda e, n: 3)
    assert list(skipped) == order()[6:]


@pytest.mark.slow
def test_resume_from_a_mid_epoch_checkpoint_is_exact(tmp_path: Path) -> None:
    straight = _run(tmp_path, "straight", "trainer.max_steps=24", "tracker=none")
    ckpt = tmp_path / "straight" / "checkpoints" / "step-000021.ckpt"
    resumed = _run(tmp_path, "resumed", "trainer.max_steps=24", "tracker=none", f"run.resume={ckpt}")
    assert straight.val_loss is not None and resumed.val_loss is not None
    assert resumed.val_loss == pytest.approx(straight.val_loss, abs=1e-6)
    assert resumed.metrics["train/loss"] == pytest.approx(straight.metrics["train/loss"], abs=1e-6)
    # A checkpoint from 3 steps earlier gives a different end point: the comparison can fail.
    earlier = tmp_path / "straight" / "checkpoints" / "step-000018.ckpt"
    other = _run(tmp_path, "other", "trainer.max_steps=27", "tracker=none", f"run.resume={earlier}")
    assert other.val_loss != pytest.approx(straight.val_loss, abs=1e-6)


@pytest.mark.slow
def test_auto_resume_continues_the_same_folder_and_mlflow_run(tmp_path: Path) -> None:
    first = _run(tmp_path, "job", "trainer.max_steps=6")
    second = _run(tmp_path, "job", "trainer.max_steps=12")  # run.resume=auto is the default
    assert second.run_id == first.run_id
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    steps = sorted(m.step for m in client.get_metric_history(first.run_id, "val/loss"))
    assert steps == [0, 6, 12]  # the baseline once, then the curve goes on from step 6
    run = client.get_run(first.run_id)
    assert run.data.params["trainer.max_steps"] == "6"
    assert run.data.tags["resume.changed.trainer.max_steps"] == "12"
    fresh = _run(tmp_path, "job", "trainer.max_steps=6", "run.resume=none")
    assert fresh.run_id != first.run_id
