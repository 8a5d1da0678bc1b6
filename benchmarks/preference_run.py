"""DPO after SFT on the built-in data: does preference tuning move the model toward the chosen answers?

Why: issue 15 asks for a DPO run of the tiny model on the shipped preference set, with the reward
accuracy on held-out pairs and the margin stated. The figures come from real commands, as a user runs
them:

1. `python -m trainer` (the default SFT run on tiny_tasks), unless `--sft RUN` names a finished one;
2. `python -m trainer objective=dpo data=tiny_prefs peft=lora model=folder model.name_or_path=<sft>/model`;
3. `trainer evaluate` of the SFT model and of the DPO adapter (on its SFT base) on the 240 held-out pairs
   and on tiny_tasks' 240 held-out examples.

Printed: DPO's own validation metrics at step 0 and at the end (rewards are 0 at step 0, where the policy
IS the reference, so accuracy starts at 0 by construction), and, for both models, the fraction of held-out
pairs whose chosen answer has the higher mean log-prob per token (evaluate with objective=simpo, whose
reward is exactly that, so no reference is needed) and teacher-forced exact match on tiny_tasks.

    .venv/bin/python benchmarks/preference_run.py                 # about 6 minutes on 2 idle cores
    .venv/bin/python benchmarks/preference_run.py --sft outputs/default/RUN
    .venv/bin/python benchmarks/preference_run.py --smoke         # 30 + 6 steps: does it still run

Figures only, never pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DPO = ["objective=dpo", "data=tiny_prefs", "peft=lora", "model=folder"]


def cli(out: Path, args: list[str]) -> tuple[float, str]:
    """Run `python -m trainer ARGS` in `out`; its wall seconds and its end panel."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "100"}
    env.pop("TRAINER_DEBUG", None)
    base = [f"run.output_root={out}", "trainer.progress_bar=false", "tracker=none"]
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", *base, *args], cwd=out, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    from default_run import realign  # benchmarks/ is on sys.path when a script in it runs

    panel = realign(proc.stdout[proc.stdout.rfind("╭─ trainer: finished") :].replace(str(out), "outputs"))
    return time.perf_counter() - started, panel


def evaluated(source: Path, args: list[str]) -> dict[str, float]:
    """`trainer evaluate infer.source=SOURCE ARGS`, in this process; its metrics."""
    from trainer.boundary import compose
    from trainer.commands.evaluate import evaluate

    inv = compose([f"infer.source={source}", "tracker=none", *args], "trainer evaluate")
    return evaluate(inv).metrics("validation")


def pair_accuracy(source: Path) -> float:
    return evaluated(source, ["objective=simpo", "data=tiny_prefs"])["eval/rewards/accuracy"]


def exact_match(source: Path) -> float:
    return evaluated(source, [])["eval/exact_match"]


def dpo_metrics(run: Path) -> dict[str, list[float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if "val/loss" in r]
    print(
        "DPO validation by step: " + ", ".join(f"{r['step']}: {r['val/rewards/accuracy']:.3f}" for r in val)
    )
    keys = (
        "val/loss",
        "val/rewards/accuracy",
        "val/rewards/margins",
        "val/rewards/chosen",
        "val/rewards/rejected",
    )
    return {k: [round(val[0][k], 4), round(val[-1][k], 4)] for k in keys} | {
        "steps": [val[0]["step"], val[-1]["step"]]
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sft", type=Path, help="a finished SFT run folder to start from (else one is trained)"
    )
    parser.add_argument("--steps", type=int, default=100, help="DPO optimizer steps")
    parser.add_argument("--smoke", action="store_true", help="30 SFT + 6 DPO steps: does it still run")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    smoke = ["trainer.checkpoint_every=disable"]
    with tempfile.TemporaryDirectory(prefix="prefs-") as tmp:
        out = Path(tmp)
        sft_wall = None
        if args.sft is None:
            sft = [
                "run.name=sft",
                *(smoke + ["trainer.max_steps=30", "trainer.val_every=30"] if args.smoke else []),
            ]
            sft_wall, _ = cli(out, sft)
            args.sft = out / "default" / "sft"
        steps = 6 if args.smoke else args.steps
        base = args.sft.resolve() / "model"
        dpo = [*DPO, f"model.name_or_path={base}", "run.name=dpo", f"trainer.max_steps={steps}", *smoke]
        dpo += [f"trainer.val_every={max(1, steps // 4)}"]
        dpo_wall, panel = cli(out, dpo)
        print(panel)
        run = out / "default" / "dpo"
        results: dict[str, Any] = {
            "sft_wall_s": round(sft_wall, 1) if sft_wall else None,
            "dpo_wall_s": round(dpo_wall, 1),
            "dpo": dpo_metrics(run),
            "pairs_preferred": [pair_accuracy(base), pair_accuracy(run / "model")],
            "exact_match": [exact_match(base), exact_match(run / "model")],
        }
    d = results["dpo"]
    print(f"\nDPO (LoRA) after SFT, {d['steps'][1]} steps on data=tiny_prefs; {results['dpo_wall_s']} s wall")
    print(f"{'figure':58} {'start':>9} {'end':>9}")
    for key in (
        "val/loss",
        "val/rewards/accuracy",
        "val/rewards/margins",
        "val/rewards/chosen",
        "val/rewards/rejected",
    ):
        print(f"{'DPO ' + key + ' (240 held-out pairs)':58} {d[key][0]:9.4f} {d[key][1]:9.4f}")
    a, b = results["pairs_preferred"]
    print(f"{'held-out pairs, chosen has higher mean log-prob (SFT / DPO)':58} {a:9.1%} {b:9.1%}")
    a, b = results["exact_match"]
    print(f"{'tiny_tasks exact match, teacher-forced (SFT / DPO)':58} {a:9.1%} {b:9.1%}")
    print("\npreference figures: " + json.dumps(results))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
