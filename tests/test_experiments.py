"""Every preset a user starts from runs: each `experiment=` and `debug=` overlay, end to end.

experiment=fsdp_cpu runs in tests/test_strategies.py (two processes); the hub preset llama_lora runs
here on a tiny Llama folder and the built-in tasks as its local Alpaca file, a few steps long.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import CONF, run_cli
from trainer.assets import asset_path

pytestmark = pytest.mark.slow

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
DEBUG = sorted(p.stem for p in (CONF / "debug").glob("*.yaml"))
RUN_ELSEWHERE = {"fsdp_cpu": "tests/test_strategies.py::test_fsdp2_cli_on_two_cpu_processes"}


def _run(tmp_path: Path, *args: str) -> tuple[Path, str]:
    """Run the CLI with a stable run name; return the run folder and stdout."""
    proc = run_cli([f"run.output_root={tmp_path / 'out'}", "run.name=t", *args], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (folder,) = (tmp_path / "out").glob("*/t")
    return folder, proc.stdout


def _saved(folder: Path) -> dict:
    return yaml.safe_load((folder / "config.yaml").read_text())


def test_every_experiment_has_a_test() -> None:
    tested = {"quick", "packed", "llama_lora"} | set(RUN_ELSEWHERE)
    assert set(EXPERIMENTS) == tested, set(EXPERIMENTS) ^ tested
    assert set(DEBUG) == {"smoke", "overfit", "profile"}


def test_quick(tmp_path: Path) -> None:
    folder, out = _run(tmp_path, "experiment=quick", "trainer.progress_bar=false")
    cfg = _saved(folder)
    assert folder.parent.name == "quick" and cfg["trainer"]["max_steps"] == 60
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == [
        "last.ckpt",
        "step-000030.ckpt",
        "step-000060.ckpt",
    ]
    assert "warmup 6" in out  # scheduler.warmup_ratio=0.1 of 60 steps


def test_packed(tmp_path: Path) -> None:
    folder, out = _run(tmp_path, "experiment=packed", "trainer.max_steps=4", "trainer.val_every=4")
    assert _saved(folder)["data"]["packing"] is True
    assert "rows of 128 tokens" in out and "global 8 = micro 8 x accum 1" in out
    assert (folder / "model" / "model.safetensors").exists()


@pytest.fixture
def tiny_llama_folder(tmp_path: Path) -> Path:
    """A local stand-in for the hub's Llama 3.2 1B: the same class, tiny, with the project's tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path / "Llama-tiny"
    tok = AutoTokenizer.from_pretrained(asset_path("tokenizer"))
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_llama_lora(tmp_path: Path, tiny_llama_folder: Path) -> None:
    from peft import AutoPeftModelForCausalLM

    folder, _ = _run(
        tmp_path,
        "experiment=llama_lora",
        f"model.name_or_path={tiny_llama_folder}",
        f"data.datasets.alpaca.path={asset_path('data/tiny_tasks/train.json')}",
        "data.datasets.alpaca.count=3000",  # about 90 packed rows: 2 whole steps of 32 rows
        "data.val_count=16",
        "trainer.max_epochs=null",
        "trainer.max_steps=2",
        "trainer.val_every=2",
        "trainer.checkpoint_every=2",
        "trainer.progress_bar=false",
        "tracker=none",
    )
    cfg = _saved(folder)
    assert folder.parent.name == "llama_lora"
    assert (cfg["peft"]["method"], cfg["peft"]["r"], cfg["peft"]["alpha"]) == ("lora", 16, 32.0)
    assert (cfg["model"]["dtype"], cfg["data"]["packing"], cfg["optimizer"]["lr"]) == ("bfloat16", True, 2e-4)
    assert [p.name for p in (folder / "checkpoints").iterdir() if p.name != "last.ckpt"] == [
        "step-000002.ckpt"
    ]
    model = AutoPeftModelForCausalLM.from_pretrained(folder / "model")
    assert model.peft_config["default"].r == 16


def test_debug_smoke(tmp_path: Path) -> None:
    folder, out = _run(tmp_path, "debug=smoke")
    assert folder.parent.name == "debug" and "tracking   off (tracker=none)" in out
    assert "4 optimizer steps" in out
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["last.ckpt", "step-000004.ckpt"]
    assert (folder / "model" / "model.safetensors").exists()


def test_debug_overfit_learns_one_batch_by_heart(tmp_path: Path) -> None:
    folder, out = _run(tmp_path, "debug=overfit", "trainer.progress_bar=false")
    assert "training on the first 32 items only" in out
    finished = out[out.index("trainer: finished") :]
    loss = re.search(r"val loss\s+[0-9.]+ -> ([0-9.]+)", finished)
    match = re.search(r"exact match\s+0\.0% -> ([0-9.]+)%", finished)
    assert loss and float(loss.group(1)) < 0.05, finished
    assert match and float(match.group(1)) == 100.0, finished
    assert not (folder / "checkpoints").exists() and not (folder / "model").exists()


def test_debug_profile_writes_one_window(tmp_path: Path) -> None:
    folder, _ = _run(tmp_path, "debug=profile")
    (trace,) = (folder / "profiler").iterdir()
    assert trace.name == "trace-step14-rank0.pt.trace.json"  # the window's last recorded step
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(e.get("name", "").startswith("ProfilerStep#") for e in events)
    assert any("Input Dims" in e.get("args", {}) for e in events)  # profiler.record_shapes=true
