"""Periodic side actions: the profiler schedule step by step, manual GC, profiler traces from real runs,
and the post-first-step collective timeout on real gloo process groups."""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
import torch.distributed as dist

from tests.conftest import ROOT, cli_env, load_config, run_cli
from trainer.config.profiler import ProfilerConfig
from trainer.parallel.timeout import StepTimeout
from trainer.training import train as train_module
from trainer.training.manual_gc import ManualGc
from trainer.training.periodic import side_callbacks
from trainer.training.profiler import make_schedule, profiler_action, window_of, windows

CODES = {"NONE": "-", "WARMUP": "W", "RECORD": "R", "RECORD_AND_SAVE": "S"}


def _actions(prof: ProfilerConfig, last_step: int) -> str:
    """One letter per optimizer step 1..last_step: - none, W warmup, R record, S record and save."""
    return "".join(CODES[profiler_action(prof, s, last_step).name] for s in range(1, last_step + 1))


# ---------------------------------------------------------------- schedule (pure, no profiler runs)


@pytest.mark.parametrize(
    ("options", "last_step", "expected"),
    [
        # every=5, window wait 1 + warmup 1 + active 2 starting at 5, 10, 15; the one at 20 would not end.
        ({"every": 5, "active": 2, "repeat": 0}, 20, "-----WRS--WRS--WRS--"),
        ({"every": 5, "active": 2, "repeat": 1}, 20, "-----WRS------------"),
        ({"every": 5, "active": 2, "repeat": 2}, 20, "-----WRS--WRS-------"),
        # last_step: the window is placed so that its last active step is the final step.
        ({"every": "last_step"}, 12, "--------WRRS"),
        ({"every": "last_step", "wait": 0, "warmup": 0, "active": 1}, 6, "-----S"),
        # wait=0: the window starts recording (or warming up) at the step where the period fires.
        ({"every": 4, "wait": 0, "warmup": 1, "active": 1, "repeat": 0}, 10, "---WS--WS-"),
        ({"every": 4, "wait": 0, "warmup": 0, "active": 2, "repeat": 0}, 10, "---RS--RS-"),
        # A window the end of the run would cut short is not opened (8..10 does not fit in 9 steps).
        ({"every": 4, "wait": 0, "warmup": 1, "active": 2, "repeat": 0}, 10, "---WRS-WRS"),
        ({"every": 4, "wait": 0, "warmup": 1, "active": 2, "repeat": 0}, 9, "---WRS---"),
        ({"every": 3, "wait": 0, "warmup": 0, "active": 1, "repeat": 0}, 10, "--S--S--S-"),
        ({"every": 3, "wait": 2, "warmup": 0, "active": 1, "repeat": 0}, 10, "----S--S--"),
        ({"every": "disable"}, 8, "--------"),
    ],
)
def test_schedule_step_by_step(options: dict[str, Any], last_step: int, expected: str) -> None:
    assert _actions(ProfilerConfig(**options), last_step) == expected


def test_windows_lists_complete_windows_only() -> None:
    prof = ProfilerConfig(every=5, active=2, repeat=0)
    assert list(windows(prof, 20)) == [(5, 8), (10, 13), (15, 18)]
    assert list(windows(prof, 20, start_step=9)) == [(10, 13), (15, 18)]
    assert list(windows(ProfilerConfig(every=12), 12)) == []  # 12..16 does not fit in 12 steps
    assert window_of(prof, 7, 20) == (5, 8) and window_of(prof, 9, 20) is None
    assert window_of(prof, 0, 20) is None and window_of(prof, 21, 20) is None


def test_torch_schedule_is_offset_by_the_start_step() -> None:
    """torch asks for k = 0, 1, ... from start(); k is optimizer step start_step + k + 1."""
    prof = ProfilerConfig(every=4, active=2, repeat=0)
    fresh = make_schedule(prof, 12)
    assert [CODES[fresh(k).name] for k in range(12)] == list(_actions(prof, 12))
    resumed = make_schedule(prof, 12, start_step=6)  # resumed after step 6: k=0 is step 7
    assert [CODES[resumed(k).name] for k in range(6)] == list(_actions(prof, 12)[6:])


# ---------------------------------------------------------------- manual GC (fake trainer, fast)


def _fake_trainer(**extra: Any) -> Any:
    return SimpleNamespace(**{"global_step": 0, "global_rank": 0, "is_global_zero": True, **extra})


@pytest.fixture
def gc_events() -> Iterator[list[tuple[int, bool]]]:
    """(generation, collector enabled) of every collection that starts; restores the collector after."""
    events: list[tuple[int, bool]] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            events.append((info["generation"], gc.isenabled()))

    was_enabled = gc.isenabled()
    gc.enable()
    gc.callbacks.append(record)
    yield events
    gc.callbacks.remove(record)
    (gc.enable if was_enabled else gc.disable)()


def _drive(callback: L.Callback, trainer: Any, steps: int, accum: int, on_step: Any = None) -> None:
    """Lightning's hook order for `steps` optimizer steps of `accum` micro batches each."""
    callback.on_train_start(trainer, None)
    if on_step is not None:
        on_step(trainer)
    for _ in range(steps):
        for micro in range(accum):
            if micro == accum - 1:
                trainer.global_step += 1  # the optimizer step runs before the last micro batch's hook
            callback.on_train_batch_end(trainer, None, None, None, 0)
            if on_step is not None:
                on_step(trainer)


def _collection_steps(seen: list[tuple[int, bool, int]]) -> list[int]:
    """The optimizer steps after which the count of collections (third field) went up, each time,
    counted from the first record (taken when training started)."""
    steps, before = [], seen[0][2]
    for step, _, count in seen:
        steps += [step] * (count - before)
        before = count
    return steps


def _seen(events: list[tuple[int, bool]], trainer: Any) -> tuple[int, bool, int]:
    """(optimizer step, collector enabled, generation-0 collections so far), read after a batch's hooks."""
    return trainer.global_step, gc.isenabled(), sum(1 for g, _ in events if g == 0)


@pytest.mark.parametrize(("every", "expected"), [(3, [3, 6, 9, 12]), ("last_step", [12]), (5, [5, 10])])
def test_manual_gc_collects_once_at_each_due_optimizer_step(every: int | str, expected, gc_events) -> None:
    trainer, seen = _fake_trainer(), []
    callback = ManualGc(every, generation=0, last_step=12)
    _drive(callback, trainer, steps=12, accum=3, on_step=lambda tr: seen.append(_seen(gc_events, tr)))
    assert _collection_steps(seen) == expected  # once per optimizer step, not once per micro batch
    assert not any(enabled for _, enabled, _ in seen)
    assert callback.collections == len(expected) and callback.total_s >= callback.longest_s > 0
    callback.on_train_end(trainer, None)
    assert gc.isenabled()


def test_manual_gc_reenables_after_exception_and_logs_pause_total(gc_events, caplog) -> None:
    trainer, callback = _fake_trainer(), ManualGc(2, generation=1, last_step=10)
    _drive(callback, trainer, steps=4, accum=1)
    assert not gc.isenabled() and [e for e in gc_events if e[0] == 1] == [(1, False), (1, False)]
    with caplog.at_level(logging.INFO, logger="trainer"):
        callback.on_exception(trainer, None, RuntimeError("boom"))
    assert gc.isenabled()
    assert "manual GC (rank 0): 2 collection(s) of generation <=1" in caplog.text


def test_manual_gc_keeps_a_collector_that_was_already_off(gc_events) -> None:
    gc.disable()
    trainer, callback = _fake_trainer(), ManualGc(1, generation=0, last_step=3)
    _drive(callback, trainer, steps=3, accum=1)
    callback.on_train_end(trainer, None)
    assert not gc.isenabled()


# ---------------------------------------------------------------- step timeout


@pytest.fixture
def gloo_world() -> Iterator[Any]:
    """A real single-process gloo process group, torn down afterwards."""
    dist.init_process_group(
        "gloo", store=dist.HashStore(), rank=0, world_size=1, timeout=timedelta(seconds=1800)
    )
    try:
        yield dist.distributed_c10d._get_default_group()
    finally:
        dist.destroy_process_group()


def _backend_timeout(group: Any) -> timedelta:
    return group._get_backend(torch.device("cpu")).options._timeout


def test_step_timeout_applies_after_the_first_optimizer_step(gloo_world, caplog) -> None:
    trainer, callback = _fake_trainer(), StepTimeout(7)
    callback.on_train_start(trainer, None)
    callback.on_train_batch_end(trainer, None, None, None, 0)  # a micro batch: no optimizer step yet
    assert _backend_timeout(gloo_world) == timedelta(seconds=1800)
    with caplog.at_level(logging.INFO, logger="trainer"):
        trainer.global_step = 1
        callback.on_train_batch_end(trainer, None, None, None, 1)
        trainer.global_step = 2
        callback.on_train_batch_end(trainer, None, None, None, 2)
    assert _backend_timeout(gloo_world) == timedelta(seconds=7)
    assert caplog.text.count("collective timeout set to 7 s after step 1 (was 1800 s") == 1
    t = torch.ones(2)
    dist.all_reduce(t)  # the group still works
    assert t.tolist() == [1.0, 1.0]


def test_step_timeout_is_logged_by_rank_zero_only(gloo_world, caplog) -> None:
    trainer, callback = _fake_trainer(is_global_zero=False), StepTimeout(9)
    with caplog.at_level(logging.INFO, logger="trainer"):
        _drive(callback, trainer, steps=2, accum=1)
    assert _backend_timeout(gloo_world) == timedelta(seconds=9) and "collective timeout" not in caplog.text


def test_side_callbacks_follow_the_config(tmp_path: Path) -> None:
    """The periodic side actions, and the strategy's own callbacks (the post-first-step timeout)."""
    from trainer.parallel import for_config

    def kinds(*overrides: str) -> list[str]:
        cfg = load_config(["trainer.max_steps=20", *overrides], run_dir=tmp_path)
        return [type(c).__name__ for c in [*side_callbacks(cfg, tmp_path, 20), *for_config(cfg).callbacks()]]

    assert kinds() == []
    assert kinds("gc.mode=manual", "gc.every=5", "profiler.every=10") == ["ManualGc", "ProfilerWindows"]
    ddp = ("parallelism=ddp", "parallelism.accelerator=cpu", "data.global_batch=64")
    assert kinds(*ddp, "parallelism.step_timeout_s=60") == ["StepTimeout"]
    assert kinds(*ddp) == []


_HANG = textwrap.dedent(
    """
    import sys, time
    from datetime import timedelta
    from types import SimpleNamespace
    import torch, torch.distributed as dist
    from trainer.parallel.timeout import StepTimeout
    rank = int(sys.argv[1])
    dist.init_process_group("gloo", store=dist.FileStore(sys.argv[2], 2), rank=rank, world_size=2,
                            timeout=timedelta(seconds=1800))
    t = torch.ones(1)
    dist.all_reduce(t)  # the "first step": both ranks take part
    trainer = SimpleNamespace(global_step=0, is_global_zero=rank == 0)
    callback = StepTimeout(1)
    callback.on_train_start(trainer, None)
    trainer.global_step = 1
    callback.on_train_batch_end(trainer, None, None, None, 0)
    if rank == 1:
        time.sleep(4)  # a hung rank: never joins the next collective
    else:
        started = time.perf_counter()
        try:
            dist.all_reduce(t)
        except RuntimeError as err:
            print(f"FAILED after {time.perf_counter() - started:.1f} s: {err}", flush=True)
    """
)


@pytest.mark.slow
def test_step_timeout_makes_a_hung_collective_fail_fast(tmp_path: Path) -> None:
    """Two gloo ranks; rank 1 skips a collective. With the 1 s step timeout rank 0 fails in about 1 s
    instead of waiting out the 1800 s init timeout (the subprocess timeout would fail this test)."""
    store = tmp_path / "store"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _HANG, str(rank), str(store)],
            cwd=ROOT,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    line = next((x for x in outputs[0].splitlines() if x.startswith("FAILED after")), outputs[0][-2000:])
    assert line.startswith("FAILED after") and "Timed out" in line, line
    assert float(line.split()[2]) < 5, line


@pytest.mark.slow
def test_ddp_run_switches_to_the_step_timeout_and_profiles_every_rank(tmp_path: Path) -> None:
    """Real Lightning DDP on 2 CPU processes (gloo): the callbacks run on both ranks, rank 0 logs once."""
    overrides = (
        "run.name=ddp tracker=none trainer.max_steps=6 trainer.val_every=disable trainer.val_at_start=false "
        "trainer.checkpoint_every=disable trainer.export_model=false trainer.progress_bar=false "
        "data.datasets.tiny_tasks.count=600 data.global_batch=64 parallelism=ddp parallelism.accelerator=cpu "
        "parallelism.step_timeout_s=120 profiler.every=last_step profiler.wait=0 profiler.active=1"
    ).split()
    proc = run_cli([f"run.output_root={tmp_path}", *overrides], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "default" / "ddp"
    log_text = (run / "train.log").read_text()
    assert log_text.count("collective timeout set to 120 s after step 1 (was 1800 s") == 1, log_text
    assert sorted(p.name for p in (run / "profiler").iterdir()) == [
        "trace-step6-rank0.pt.trace.json",
        "trace-step6-rank1.pt.trace.json",
    ]


# ---------------------------------------------------------------- real in-process runs


def _run(tmp_path: Path, *overrides: str, probe: L.Callback | None = None, monkeypatch=None) -> Path:
    """A 12-step in-process run (about 1-2 s of training), with accumulation 2 so that hooks see micro
    batches; `probe` is added after the side callbacks, so it sees their effect at each batch."""
    if probe is not None:
        monkeypatch.setattr(
            train_module,
            "side_callbacks",
            lambda cfg, run_dir, last: [*side_callbacks(cfg, run_dir, last), probe],
        )
    quick = [
        "tracker=none",
        "trainer.max_steps=12",
        "trainer.val_every=disable",
        "trainer.val_at_start=false",
        "trainer.checkpoint_every=disable",
        "trainer.save_last=false",
        "trainer.save_on_exception=false",
        "trainer.export_model=false",
        "trainer.progress_bar=false",
        "data.datasets.tiny_tasks.count=600",
        "data.micro_batch=16",
    ]
    run_dir = tmp_path / "run"
    train_module.train(load_config([*quick, *overrides], run_dir=run_dir))
    return run_dir


def _profiler_steps(events: list[dict[str, Any]]) -> list[int]:
    """Optimizer steps recorded in a trace: torch's ProfilerStep#k is optimizer step k + 1 in a fresh run."""
    names = {e["name"] for e in events if str(e.get("name", "")).startswith("ProfilerStep#")}
    return sorted(int(n.split("#")[1]) + 1 for n in names)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["profiler.every=4", "profiler.active=2", "profiler.repeat=0"], {7: [6, 7], 11: [10, 11]}),
        (["profiler.every=last_step", "profiler.wait=0", "profiler.active=2"], {12: [11, 12]}),
    ],
)
def test_profiler_writes_one_trace_per_window_with_the_recorded_steps(
    tmp_path: Path, overrides: list[str], expected: dict[int, list[int]]
) -> None:
    run_dir = _run(tmp_path, *overrides, "profiler.record_shapes=true")
    traces = {t.name: t for t in (run_dir / "profiler").iterdir()}
    assert sorted(traces) == sorted(f"trace-step{s}-rank0.pt.trace.json" for s in expected)
    for step, recorded in expected.items():
        trace = traces[f"trace-step{step}-rank0.pt.trace.json"]
        events = json.loads(trace.read_text())["traceEvents"]
        assert _profiler_steps(events) == recorded, trace.name
        assert any("Input Dims" in e.get("args", {}) for e in events)  # record_shapes passed through
        assert any(e.get("name") == "aten::mm" or e.get("name") == "aten::addmm" for e in events)
    assert not torch._C._autograd._profiler_enabled()  # stopped at the end of training


class _Probe(L.Callback):
    """Records `_seen` after the side callbacks at each micro batch; optionally raises after a given
    optimizer step."""

    def __init__(self, events: list[tuple[int, bool]], raise_at: int | None = None) -> None:
        self.events, self.raise_at, self.seen = events, raise_at, []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seen.append(_seen(self.events, trainer))

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.seen.append(_seen(self.events, trainer))
        if trainer.global_step == self.raise_at:
            raise RuntimeError("injected failure")


@pytest.mark.slow
def test_manual_gc_in_a_real_run(tmp_path: Path, gc_events, monkeypatch, caplog) -> None:
    probe = _Probe(gc_events)
    with caplog.at_level(logging.INFO, logger="trainer"):
        _run(
            tmp_path, "gc.mode=manual", "gc.every=3", "gc.generation=0", probe=probe, monkeypatch=monkeypatch
        )
    assert len(probe.seen) == 1 + 24  # training start, then 12 optimizer steps x 2 micro batches
    assert not any(enabled for _, enabled, _ in probe.seen)
    assert _collection_steps(probe.seen) == [3, 6, 9, 12]
    assert gc.isenabled()
    assert "manual GC (rank 0): 4 collection(s) of generation <=0" in caplog.text


@pytest.mark.slow
def test_a_failing_run_restores_gc_and_stops_the_profiler(tmp_path: Path, gc_events, monkeypatch) -> None:
    probe = _Probe(gc_events, raise_at=5)  # inside the profiler window 4..7
    overrides = ("gc.mode=manual", "gc.every=2", "profiler.every=4", "profiler.active=2")
    with pytest.raises(RuntimeError, match="injected failure"):
        _run(tmp_path, *overrides, probe=probe, monkeypatch=monkeypatch)
    assert gc.isenabled()
    assert not torch._C._autograd._profiler_enabled()
    with torch.profiler.profile():  # a new profiler can start: none is left running
        torch.ones(2).sum()


@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_memory_snapshot_per_window_on_gpu(tmp_path: Path) -> None:
    import pickle

    run_dir = _run(
        tmp_path, "parallelism.accelerator=gpu", "profiler.every=4", "profiler.active=2",
        "profiler.memory_snapshot=true",
    )  # fmt: skip
    (snapshot,) = (run_dir / "profiler").glob("memory-*.pickle")
    assert snapshot.name == "memory-step7-rank0.pickle"
    data = pickle.loads(snapshot.read_bytes())
    assert data["segments"] and any(trace for trace in data["device_traces"])
    assert (run_dir / "profiler" / "trace-step7-rank0.pt.trace.json").exists()
