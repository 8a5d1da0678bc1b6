"""The default job on a machine that is not idle: wall time alone and beside one busy process.

Why: on 2 cores, a second busy process (a test suite, another run) made torch's two threads spin
against each other: a 100-step run took 83 s instead of about 7. The project chooses the threads
(`trainer.threads`, trainer/training/threads.py); this measures what its choice costs and saves, against
torch's own choice (every core, OpenMP's default spin-waiting), in the same run.

For each setting it runs `python -m trainer` for --steps steps (no validation, checkpoints, export or
tracker, so training is nearly all of it) once on the idle machine and once while a competitor keeps one
core busy, and prints the wall times and the ratio busy / idle (goal: at most about 2 with a competitor).
Competitors: a pure-Python loop (like a test suite's own work), and a second torch process doing
matrix products with torch's default threads (like another run).

    .venv/bin/python benchmarks/busy_machine.py             # about 8 minutes on 2 cores
    .venv/bin/python benchmarks/busy_machine.py --smoke     # 10 steps, the default setting, one competitor

Figures only, never pass/fail. Run it on an otherwise idle machine: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUIET = [
    "tracker=none",
    "trainer.progress_bar=false",
    "trainer.val_every=disable",
    "trainer.val_at_start=false",
    "trainer.checkpoint_every=disable",
    "trainer.save_last=false",
    "trainer.export_model=false",
]
# What torch does by itself: a thread per core, OpenMP's default wait policy (threads spin while waiting).
SETTINGS = {
    "threads=torch (every core)": {"args": ["trainer.threads=torch"], "env": {}},
    "threads=1": {"args": ["trainer.threads=1"], "env": {}},
    "threads=auto (the default)": {"args": [], "env": {}},
}
COMPETITORS = {
    "a Python loop": [sys.executable, "-c", "while True: pass"],
    "a torch process (default threads)": [
        sys.executable,
        "-c",
        "import torch\nx = torch.randn(256, 256)\nwhile True: x = (x @ x).tanh()",
    ],
}


def run(steps: int, setting: dict, out: Path) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **setting["env"]}
    env.pop("TRAINER_DEBUG", None)
    args = [f"trainer.max_steps={steps}", f"run.output_root={out}", *QUIET, *setting["args"]]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "trainer", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return time.perf_counter() - started


def busy(competitor: list[str], steps: int, setting: dict, out: Path) -> float:
    other = subprocess.Popen(competitor, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.0)  # the competitor is running before the run starts
        return run(steps, setting, out)
    finally:
        other.kill()
        other.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps per run")
    parser.add_argument(
        "--smoke", action="store_true", help="10 steps, threads=auto beside the Python competitor only"
    )
    args = parser.parse_args()
    steps = 10 if args.smoke else args.steps
    competitors = dict(list(COMPETITORS.items())[:1]) if args.smoke else COMPETITORS
    settings = {k: v for k, v in SETTINGS.items() if "default" in k} if args.smoke else SETTINGS
    print(
        f"{os.cpu_count()} CPUs, 1-min load average at start: {os.getloadavg()[0]:.2f}; {steps} steps per run"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-busy-") as out:
        for label, setting in settings.items():
            idle = run(steps, setting, Path(out))
            for name, competitor in competitors.items():
                loaded = busy(competitor, steps, setting, Path(out))
                rows.append((label, name, idle, loaded))
                print(f"  {label}, beside {name}: idle {idle:.1f} s, busy {loaded:.1f} s", flush=True)
    width = max(len(f"{label}, beside {name}") for label, name, *_ in rows)
    print(f"\n{'setting, competitor'.ljust(width)}  idle s  busy s  busy/idle")
    for label, name, idle, loaded in rows:
        print(f"{f'{label}, beside {name}'.ljust(width)}  {idle:6.1f}  {loaded:6.1f}  {loaded / idle:9.2f}")
    print(f"1-min load average at end (includes this run): {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
