"""`hardware:` facts about the machine that validation depends on (keys in trainer/conf/train.yaml).

They are inputs, not guesses made deep inside training: `null` means "detect at launch", and any value
set by the user wins. That makes GPU-only rules (bf16, fp16 AMP, device counts) testable on a CPU box:
a test states `hardware.cuda=true hardware.gpu_count=8` and checks the message. Detection uses the
standard library only (nvidia-smi, importlib), so it runs before torch is imported.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess

from pydantic import Field, NonNegativeInt, PositiveInt

from trainer.config.base import StrictModel

OPTIONAL_PACKAGES = ("flash_attn", "bitsandbytes", "deepspeed", "peft", "lion_pytorch")


class HardwareFacts(StrictModel):
    cuda: bool | None = Field(None, description="A CUDA GPU is usable; null = detect with nvidia-smi.")
    gpu_count: NonNegativeInt | None = Field(None, description="GPUs on this node; null = detect.")
    bf16: bool | None = Field(
        None, description="The GPUs support bfloat16 (compute capability >= 8.0); null = detect."
    )
    packages: dict[str, bool] | None = Field(
        None, description="Optional packages importable here (flash_attn, bitsandbytes, ...); null = detect."
    )
    slurm_nodes: NonNegativeInt | None = Field(
        None, description="Nodes of the Slurm job this runs in (SLURM_JOB_NUM_NODES); 0 = not in Slurm."
    )
    cpu_cores: PositiveInt | None = Field(
        None, description="CPU cores this process may run on (its affinity mask); null = detect."
    )
    slurm_tasks_per_node: NonNegativeInt | None = Field(
        None, description="Slurm tasks per node (SLURM_NTASKS_PER_NODE); 0 = not in Slurm; null = detect."
    )


def _gpu_capabilities() -> list[float]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    caps = []
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        try:
            caps.append(float(line.strip()))
        except ValueError:
            continue
    return caps


def _cpu_cores() -> int:
    """The cores this process may use: its affinity mask (a Slurm allocation, taskset, a container's
    cpuset), not every core of the machine."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _slurm_tasks_per_node() -> int:
    """SLURM_NTASKS_PER_NODE is set only with --ntasks-per-node; otherwise derive it from the totals."""
    per_node = os.environ.get("SLURM_NTASKS_PER_NODE", "").split("(")[0]
    if per_node.isdigit():
        return int(per_node)
    tasks, nodes = os.environ.get("SLURM_NTASKS", "1"), os.environ.get("SLURM_JOB_NUM_NODES", "1")
    return max(1, int(tasks) // max(1, int(nodes))) if tasks.isdigit() and nodes.isdigit() else 0


def in_slurm_step() -> bool:
    """Inside a task that srun started (our sbatch script's, or submitit's): where a run with
    `launcher=slurm` trains instead of submitting itself."""
    return "SLURM_STEP_ID" in os.environ and "SLURM_JOB_ID" in os.environ


def for_slurm_job(given: dict | None, launcher: dict) -> dict:
    """The facts of the nodes a Slurm job will get, for validating a submission on a login node: GPUs
    and layout from the launcher settings (bf16 assumed with GPUs; the job checks again on its nodes),
    packages from here (the nodes run the same environment). Values the user set are kept."""
    gpus = int(launcher.get("gpus_per_node") or 0)
    target = {
        "cuda": gpus > 0,
        "gpu_count": gpus,
        "bf16": gpus > 0,
        "cpu_cores": launcher.get("cpus_per_task"),
        "slurm_nodes": 0,  # not in the job yet: rules/launcher.py checks the layout it asks for
        "slurm_tasks_per_node": 0,
    }
    facts = {k: v for k, v in (given or {}).items() if v is not None}
    return {**target, "packages": _packages(), **facts}


def _packages() -> dict[str, bool]:
    return {name: importlib.util.find_spec(name) is not None for name in OPTIONAL_PACKAGES}


def detect(given: dict | None) -> dict:
    """Fill every null fact from this machine; values the user set are kept as they are."""
    facts = dict(given or {})
    keys = ("cuda", "gpu_count", "bf16", "packages", "cpu_cores", "slurm_nodes", "slurm_tasks_per_node")
    if all(facts.get(k) is not None for k in keys):
        return facts
    caps = _gpu_capabilities()
    in_slurm = "SLURM_JOB_ID" in os.environ and os.environ.get("SLURM_JOB_NUM_NODES", "").isdigit()
    detected = {
        "cuda": bool(caps),
        "gpu_count": len(caps),
        "bf16": bool(caps) and min(caps) >= 8.0,
        "packages": _packages(),
        "cpu_cores": _cpu_cores(),
        "slurm_nodes": int(os.environ["SLURM_JOB_NUM_NODES"]) if in_slurm else 0,
        "slurm_tasks_per_node": _slurm_tasks_per_node() if in_slurm else 0,
    }
    return {k: facts.get(k) if facts.get(k) is not None else v for k, v in detected.items()}
