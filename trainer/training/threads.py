"""`trainer.threads=auto` on the CPU: torch's threads follow the cores that are actually free.

Why: torch starts one thread per core, and OpenMP's threads spin while they wait for each other. Alone
on a machine that is fastest (on 2 cores the default job steps 1.5x faster with 2 threads than with 1),
but beside one other busy process (a test suite, another run) the two threads fight it for the cores:
a 100-step run took 54 s instead of 13 next to a Python loop, 107 s next to a second torch process
(benchmarks/busy_machine.py). One thread is barely slowed by the same neighbours (20 s and 31 s).

So every couple of seconds the governor reads how much CPU time the other processes on this process's
cores used (/proc/stat minus our own time) and sets `torch.set_num_threads` to the cores left, at least
1 and at most `hardware.cpu_cores`; a change needs two readings in a row, so a short burst does not
flip it. The thread count does not change the numbers: the default job's weights after 40 steps with 1
and with 2 threads are bitwise equal. The end summary says how long each count was used.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from typing import Any

import lightning as L
import torch

from trainer.config import TrainConfig

log = logging.getLogger("trainer")


def thread_callbacks(cfg: TrainConfig) -> list[L.Callback]:
    """Apply `trainer.threads`: N is set now (and passed on to DDP's child processes through
    OMP_NUM_THREADS); auto on the CPU in one process gets the governor; otherwise torch's (or, for
    several processes, Lightning's: cores / processes) choice stays. OMP_NUM_THREADS set by the user
    counts as a choice too: auto leaves it alone."""
    threads = cfg.trainer.threads
    if isinstance(threads, int):
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        return []
    auto = threads == "auto" and not cfg.on_gpu and not cfg.parallelism.distributed
    if auto and "OMP_NUM_THREADS" not in os.environ and os.path.exists("/proc/stat"):
        return [ThreadGovernor(cfg.hardware.cpu_cores or torch.get_num_threads())]
    return []


class CpuMeter:
    """Core-seconds used on our cores by everything, and by this process, since the last reading."""

    def __init__(self, cores: set[int]) -> None:
        self.cores = cores
        self.tick = os.sysconf("SC_CLK_TCK")
        self.last = self._read()

    def _read(self) -> tuple[float, float, float]:
        busy = 0
        with open("/proc/stat", encoding="ascii") as f:
            for line in f:
                name, *fields = line.split()
                if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in self.cores:
                    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
                    busy += user + nice + system + irq + softirq + steal
        own = os.times()
        return time.monotonic(), busy / self.tick, own.user + own.system

    def others(self) -> float:
        """How many cores other processes kept busy, on average, since the last call."""
        now = self._read()
        (t0, busy0, own0), (t1, busy1, own1) = self.last, now
        self.last = now
        wall = max(t1 - t0, 1e-6)
        return max(0.0, (busy1 - busy0) - (own1 - own0)) / wall


def _target(free: float, most: int) -> int:
    return max(1, min(most, int(free + 0.5)))


class ThreadGovernor(L.Callback):
    """Sets torch's thread count to the free cores every `every_s` seconds of training."""

    def __init__(self, most: int, every_s: float = 2.0) -> None:
        self.most = most
        self.every_s = every_s
        # Reading from now on: the first count is chosen from what happened before training (model
        # build, the baseline validation), so a busy machine is seen before the first step.
        self.meter = CpuMeter(set(os.sched_getaffinity(0)))
        self._pending: int | None = None
        self._since = 0.0
        self.seconds: dict[int, float] = defaultdict(float)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        others = self.meter.others()
        torch.set_num_threads(_target(len(self.meter.cores) - others, self.most))
        log.info("torch threads %d at the start: other processes kept %.1f of %d cores busy",
                 torch.get_num_threads(), others, len(self.meter.cores))  # fmt: skip
        self._since = time.monotonic()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        if now - self._since < self.every_s:
            return
        current = torch.get_num_threads()
        self.seconds[current] += now - self._since
        self._since = now
        others = self.meter.others()
        target = _target(len(self.meter.cores) - others, self.most)
        if target == current or target != self._pending:
            self._pending = target if target != current else None
            return
        torch.set_num_threads(target)
        self._pending = None
        log.info(
            "torch threads %d -> %d: other processes kept %.1f of %d cores busy",
            current,
            target,
            others,
            len(self.meter.cores),
        )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds[torch.get_num_threads()] += time.monotonic() - self._since

    def describe(self) -> str:
        """`2 (auto: 2 for 95 s, 1 for 12 s)` for the end summary."""
        used = sorted(self.seconds.items(), key=lambda kv: -kv[0])
        spans = ", ".join(f"{n} for {s:.0f} s" for n, s in used if s >= 0.5)
        return f"auto, following the free cores: {spans}" if spans else "auto"
