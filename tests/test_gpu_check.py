"""benchmarks/gpu/check.py --dry: the CPU rehearsal of the one-shot GPU device check (issue 16).

Why: a GPU machine is lent rarely and briefly; the check must run to the end there the first time. This
runs it on CPU at tiny sizes, as the device will (without mlflow, datasets or optuna, which the device
image lacks: importing one fails here too), and checks that every section has figures or says why not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Runs the script with the packages the device lacks made unimportable.
WITHOUT = (
    "import runpy, sys\n"
    "for name in ('mlflow', 'datasets', 'optuna', 'submitit'):\n"
    "    sys.modules[name] = None\n"
    "sys.argv = ['check.py', *sys.argv[1:]]\n"
    "sys.path.insert(0, 'benchmarks/gpu')  # as running the file does: its helpers sit beside it\n"
    "runpy.run_path('benchmarks/gpu/check.py', run_name='__main__')\n"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("gpu-check")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT, "--dry", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "# GPU check (dry)" in done.stdout  # the Markdown is printed too
    assert (out / "gpu_check.md").read_text().startswith("# GPU check (dry)")
    return json.loads((out / "gpu_check.json").read_text())


def test_every_section_has_figures_or_a_reason(report: dict) -> None:
    sections = report["sections"]
    assert list(sections) == [
        "environment",
        "throughput",
        "overhead",
        "memory",
        "packing",
        "gpu_tests",
        "compiled",
    ]
    for name, section in sections.items():
        assert "error" not in section, (name, section)
        assert section["section_seconds"] >= 0
    assert report["mode"] == "dry" and report["total_seconds"] < 240


def test_environment_names_versions_and_missing_packages(report: dict) -> None:
    env = report["sections"]["environment"]
    assert env["cuda"] == "no CUDA" and env["peak_bf16_flops_for_mfu"] == 989e12
    for name in ("torch", "transformers", "lightning", "pydantic", "hydra-core", "trainer"):
        assert env[name][0].isdigit(), (name, env[name])
    for name in ("flash_attn", "deepspeed", "bitsandbytes"):  # a version, or why it is missing
        assert env[name][0].isdigit() or env[name].startswith("missing ("), (name, env[name])


def test_throughput_runs_sdpa_with_and_without_checkpointing(report: dict) -> None:
    tp = report["sections"]["throughput"]
    assert (tp["sequence_len"], tp["micro_batch"], tp["steps"]) == (128, 2, 3)
    off, on = tp["sdpa, checkpointing off"], tp["sdpa, checkpointing on"]
    assert off["tokens_per_s"] > 0 and on["tokens_per_s"] > 0
    assert off["first_loss"] == pytest.approx(on["first_loss"], abs=1e-4)  # same weights, same batch
    assert "mfu_6n" not in off  # no CUDA peak to divide by on a CPU
    assert tp["flash_attention_2, checkpointing off"] == {"skipped": "no CUDA"}
    assert tp["flex_attention, checkpointing on"]["skipped"].startswith("no CUDA (torch's FlexAttention")


def test_overhead_compares_the_same_step(report: dict) -> None:
    ov = report["sections"]["overhead"]
    assert ov["ours"]["first_loss"] == pytest.approx(ov["hand_written"]["first_loss"], abs=1e-4)
    assert ov["ratio_ours_over_hand_written"] == pytest.approx(
        ov["ours"]["tokens_per_s"] / ov["hand_written"]["tokens_per_s"], abs=2e-3
    )


def test_packing_compares_the_same_lengths_packed_and_padded(report: dict) -> None:
    pk = report["sections"]["packing"]
    assert pk["examples"] == 999 and pk["scaled_by"] == 16  # alpaca_en_demo at 2048, rows of 128 in --dry
    assert pk["packed"]["batch_shape"] == [2, 128] and pk["packed"]["fill"] > 0.95
    assert pk["padded"]["fill"] < pk["packed"]["fill"]  # padding to each batch's longest example
    assert pk["packed_over_padded"] == pytest.approx(
        pk["packed"]["tokens_per_s"] / pk["padded"]["tokens_per_s"], abs=2e-3
    )


def test_memory_gives_the_plan_estimate_and_runs_each_row(report: dict) -> None:
    mem = report["sections"]["memory"]
    for name in ("full", "full, loss in chunks", "full, checkpointing", "lora"):
        assert mem[name]["tokens_per_s"] > 0 and "measured_gib" not in mem[name], name  # no CUDA peak
    # LoRA trains adapters only: no full gradients or optimizer states.
    assert 0 < mem["lora"]["estimate_gib"] < mem["full"]["estimate_gib"]
    # The chunked loss is the same loss on the same batch, with fewer logits held.
    chunked = mem["full, loss in chunks"]
    assert chunked["first_loss"] == pytest.approx(mem["full"]["first_loss"], abs=1e-5)
    assert chunked["estimate_activations_gib"] < mem["full"]["estimate_activations_gib"]
    for name in ("qlora", "full, 8-bit AdamW"):  # composed with a GPU's facts: the estimate only
        assert mem[name]["measured"] == "skipped: needs CUDA and bitsandbytes", name
        assert mem[name]["precision"] == "bf16-mixed"  # trainer.precision=auto, as on the device
    assert mem["full"]["precision"] == "32"  # auto on this CPU
    # 4-bit decoder weights: far below LoRA's fp32 base (the qlora row loads a saved local folder).
    assert mem["qlora"]["estimate_weights_gib"] < mem["lora"]["estimate_weights_gib"] / 2


def test_gpu_tests_are_collected_and_skip_without_cuda(report: dict) -> None:
    gt = report["sections"]["gpu_tests"]
    assert gt["exit"] == 0 and gt["skipped"] >= 3 and "passed" not in gt and "failed" not in gt
    assert "tests/test_strategies.py" in gt["files"]
