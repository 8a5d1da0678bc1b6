"""What Slurm costs a run: submit to running, a two-node step against one process, requeue downtime.

Why: `trainer submit` should return at once and the job start within seconds; two nodes should not make
a step much slower than one process doing the same global batch; a requeue should cost seconds, not the
two minutes of Slurm's defaults. Runs against the cluster `sinfo` reaches (ci/slurm/ on this machine).

    .venv/bin/python benchmarks/slurm_jobs.py            # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/slurm_jobs.py --smoke    # fewer steps

It prints, for the default job on a shrunken data set with threads=1:
1. `trainer submit` wall time, and submit -> RUNNING and submit -> first progress line (polled every 0.1 s);
2. training seconds (the end panel's) for N steps of global batch 32: one process (micro 32), and DDP
   over two nodes x one task (micro 16 each), and the ratio. On this machine both "nodes" share 2 cores,
   so this measures gloo and Slurm overhead, not a speed-up;
3. requeue: `scancel -s USR2` at step 5 -> the requeued job's first line (downtime), and -> finished.
Figures only, never pass/fail. With no cluster it says so and measures nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMON = [
    "data.datasets.tiny_tasks.count=2000",
    "trainer.val_every=disable",
    "trainer.val_at_start=false",
    "trainer.progress_bar=false",
    "trainer.checkpoint_every=disable",
    "trainer.export_model=false",
    "trainer.threads=1",
    "tracker=none",
    "data.global_batch=32",
]
JOB = ["launcher=slurm", "launcher.time=00:20:00", "launcher.signal_before_s=30"]
TWO_NODES = [
    "parallelism=ddp",
    "parallelism.accelerator=cpu",
    "parallelism.nodes=2",
    "parallelism.devices=1",
    "data.micro_batch=16",
]


def trainer(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "trainer", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return done


def state(job: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True).stdout
    m = re.search(r"JobState=(\S+)", out)
    return m.group(1) if m else "GONE"


def wait_for(predicate, timeout: float = 600.0, every: float = 0.1) -> float:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("gave up waiting")
        time.sleep(every)
    return time.perf_counter() - started


def submit(args: list[str], cwd: Path) -> tuple[str, Path, float]:
    """(job id, run folder, seconds `trainer submit` took)."""
    started = time.perf_counter()
    done = trainer(["submit", *args, *JOB], cwd)
    job = re.search(r"submitted Slurm job (\d+)", done.stdout).group(1)
    run_dir = Path(re.search(r"run folder\s+(\S+)", done.stdout).group(1))
    return job, run_dir, time.perf_counter() - started


def finished(job: str, run_dir: Path) -> str:
    wait_for(lambda: state(job) in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "GONE"))
    return (run_dir / "slurm" / f"{job}.out").read_text()


def train_seconds(out: str) -> float:
    return float(re.findall(r"([0-9.]+) s training", out)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of the step-time runs")
    parser.add_argument("--smoke", action="store_true", help="10 steps")
    args = parser.parse_args()
    steps = 10 if args.smoke else args.steps
    if not shutil.which("sinfo") or subprocess.run(["sinfo"], capture_output=True).returncode != 0:
        print("no Slurm cluster reachable (sinfo): nothing measured")
        print("requeue downtime: not measured")
        return
    print(f"{os.cpu_count()} CPUs, 1-min load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        cwd = Path(tmp)
        root = f"run.output_root={cwd / 'outputs'}"
        run = [root, *COMMON, f"trainer.max_steps={steps}", f"trainer.log_every={max(1, steps // 5)}"]

        job, run_dir, submit_s = submit([*run, "run.name=one"], cwd)
        log = run_dir / "train.log"
        running = wait_for(lambda: state(job) != "PENDING")
        first = wait_for(lambda: log.is_file() and "] step " in log.read_text())
        one = train_seconds(finished(job, run_dir))
        print(
            f"1. trainer submit returned in {submit_s:.2f} s; RUNNING {running:.1f} s after; first step line"
        )
        print(f"   {running + first:.1f} s after (imports, data, model build)")

        job, run_dir, _ = submit([*run, *TWO_NODES, "run.name=two"], cwd)
        two = train_seconds(finished(job, run_dir))
        one_ms, two_ms = one / steps * 1000, two / steps * 1000
        print(f"2. {steps} steps of global batch 32: one process {one:.1f} s ({one_ms:.0f} ms/step),")
        print(f"   two nodes x 1 task (DDP, gloo) {two:.1f} s ({two_ms:.0f} ms/step), ratio {two / one:.2f}")

        requeue_steps = ["trainer.max_steps=30", "trainer.log_every=1", "run.name=requeue"]
        job, run_dir, _ = submit([root, *COMMON, *requeue_steps], cwd)
        log, out = run_dir / "train.log", run_dir / "slurm" / f"{job}.out"
        wait_for(lambda: log.is_file() and "] step 5/30" in log.read_text())
        signalled = time.perf_counter()
        subprocess.run(["scancel", "-s", "USR2", job], check=True)
        down = wait_for(lambda: "restart 1" in out.read_text())
        resumed = wait_for(lambda: "Resuming from" in log.read_text()) + down
        finished(job, run_dir)
        total = time.perf_counter() - signalled
        print(f"3. requeue downtime: signal -> requeued job running {down:.1f} s, -> resumed from the")
        print(f"   checkpoint {resumed:.1f} s, -> finished {total:.1f} s")
    print(f"1-min load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
