"""`trainer.threads`: what auto does with the cores other processes use, and the explicit choices."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import load_config
from trainer.training import threads
from trainer.training.threads import CpuMeter, ThreadGovernor, thread_callbacks


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_target_is_the_free_cores_rounded_at_least_one() -> None:
    assert [threads._target(free, 2) for free in (2.0, 1.6, 1.4, 1.0, 0.2, -1.0)] == [2, 2, 1, 1, 1, 1]
    assert threads._target(7.9, 4) == 4  # never more than the cores this process may use


def test_a_busy_neighbour_is_measured(tmp_path) -> None:
    cores = set(os.sched_getaffinity(0))
    meter = CpuMeter(cores)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        meter.others()  # from now on
        time.sleep(1.5)
        others = meter.others()
    finally:
        busy.kill()
        busy.wait()
    assert 0.7 <= others <= len(cores) + 0.2, others  # at least the one core it keeps busy


def test_the_governor_follows_two_agreeing_readings(restore_threads, monkeypatch) -> None:
    governor = ThreadGovernor(most=2, every_s=0.0)
    readings = iter([0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0])  # other processes' cores, one per check
    monkeypatch.setattr(governor.meter, "others", lambda: next(readings))
    monkeypatch.setattr(governor.meter, "cores", {0, 1})
    governor.on_train_start(None, None)
    seen = []
    for _ in range(6):
        governor.on_train_batch_end(None, None, None, None, 0)
        seen.append(torch.get_num_threads())
    # 2 at the start (idle); a lone busy reading changes nothing; two in a row go to 1; two idle back to 2.
    assert seen == [2, 2, 2, 1, 1, 2]
    governor.on_train_end(None, None)
    assert set(governor.seconds) == {1, 2}
    governor.seconds = {2: 95.2, 1: 12.4}
    assert governor.describe() == "auto, following the free cores: 2 for 95 s, 1 for 12 s"


def test_explicit_and_auto_choices(restore_threads, monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert thread_callbacks(load_config(["trainer.threads=1"])) == [] and torch.get_num_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    (governor,) = thread_callbacks(load_config(["trainer.threads=auto", "hardware.cpu_cores=2"]))
    assert isinstance(governor, ThreadGovernor) and governor.most == 2
    assert thread_callbacks(load_config(["trainer.threads=torch"])) == []
    ddp = load_config(["parallelism=ddp", "parallelism.accelerator=cpu", "data.global_batch=64"])
    assert thread_callbacks(ddp) == []  # several processes: Lightning's cores / processes
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert thread_callbacks(load_config()) == []  # the user's own OMP_NUM_THREADS is a choice too


def _weights_after_steps(threads_: int, steps: int = 8) -> list[torch.Tensor]:
    """The default job's model after a few AdamW steps on its first batches, with `threads_` threads."""
    from trainer.data.prepare import prepare_data
    from trainer.models.build import build_model, hf_config, load_tokenizer
    from trainer.models.scoring import token_loss

    cfg = load_config()
    tokenizer = load_tokenizer(cfg.model)
    data = prepare_data(cfg.data, tokenizer, cfg.run.seed, write_cache=False)
    collate = data.collator(tokenizer.pad_token_id, train=True)
    torch.set_num_threads(threads_)
    torch.manual_seed(cfg.run.seed)
    model = build_model(cfg.model, hf_config(cfg.model, tokenizer)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr)
    for step in range(steps):
        batch = collate([data.examples[i] for i in range(step * 32, step * 32 + 32)])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        total, count = token_loss(logits, batch["labels"])
        (total / count).backward()
        opt.step()
        opt.zero_grad()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.slow
def test_the_thread_count_does_not_change_the_weights(restore_threads) -> None:
    one, two = _weights_after_steps(1), _weights_after_steps(2)
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))
