"""End to end: the real CLI in a subprocess, outputs loaded back with plain transformers and MlflowClient."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.conftest import cli_env, load_config, run_cli
from trainer.assets import asset_path
from trainer.config.dataset import AlpacaFormat
from trainer.data.formats import generation_prompt

pytestmark = pytest.mark.slow


def _ok(proc) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _client(outputs: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{outputs / 'mlflow.db'}")


def _four_steps(quick_overrides: list[str]) -> list[str]:
    """The quick overrides cut to 4 steps with no periodic checkpoints, for tests that run 2 jobs or ranks."""
    kept = [o for o in quick_overrides if not o.startswith("trainer.")]
    return [
        *kept,
        "trainer.max_steps=4",
        "trainer.val_every=4",
        "trainer.checkpoint_every=disable",
        "trainer.progress_bar=false",
    ]


def test_run_writes_folder_model_checkpoints_provenance_and_mlflow(tmp_path: Path, quick_overrides) -> None:
    proc = run_cli([*quick_overrides, "run.name=e2e", "run.experiment=cli"], cwd=tmp_path)
    _ok(proc)
    run = tmp_path / "outputs" / "cli" / "e2e"
    assert "trainer: run cli/e2e" in proc.stdout and "trainer: finished cli/e2e" in proc.stdout
    for name in (
        "config.yaml",
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "train.log",
        "provenance.json",
        "checkpoints/last.ckpt",
        "checkpoints/step-000006.ckpt",
        "checkpoints/step-000012.ckpt",
        "model/model.safetensors",
        "model/config.json",
        "model/generation_config.json",
        "model/tokenizer.json",
    ):
        assert (run / name).exists(), name
    prov = json.loads((run / "provenance.json").read_text())
    assert "trainer.max_steps=12" in prov["overrides"] and prov["packages"]["torch"] and prov["host"]
    assert prov["command"].startswith("python -m trainer ")
    # Progress without a terminal: a plain line every log_every (10) steps and at the end, on stdout
    # (a pipe here) and in train.log.
    log = (run / "train.log").read_text()
    for out in (proc.stdout, log):
        steps = re.findall(r"step (\d+)/12 \(\d+%\)  loss \d+\.\d{4}  lr \S+  [\d,]+ tokens/s  elapsed ", out)
        assert steps == ["10", "12"], out[-2000:]

    # The exported model is plain transformers: load and generate greedily for a held-out prompt.
    tok = AutoTokenizer.from_pretrained(run / "model")
    model = AutoModelForCausalLM.from_pretrained(run / "model")
    record = json.loads(Path(asset_path("data/tiny_tasks/validation.json")).read_text())[0]
    prompt = generation_prompt(record, AlpacaFormat(template="alpaca_short"), tok, None)
    enc = tok(prompt, return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]
    # Same weights as the last Lightning checkpoint.
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)[
        "state_dict"
    ]
    emb = state["model.model.embed_tokens.weight"]
    assert torch.equal(emb, model.model.embed_tokens.weight)

    # MLflow: one run with the flattened config as params, metrics against the step, config as artifact.
    client = _client(tmp_path / "outputs")
    exp = client.get_experiment_by_name("cli")
    (mrun,) = client.search_runs([exp.experiment_id])
    assert mrun.info.run_name == "e2e" and mrun.info.status == "FINISHED"
    assert mrun.data.params["optimizer.lr"] == "0.002" and mrun.data.params["trainer.max_steps"] == "12"
    assert mrun.data.params["model.architecture.hidden_size"] == "128"
    for key in ("train/loss", "train/lr", "train/tokens_per_s", "val/loss", "val/exact_match"):
        assert client.get_metric_history(mrun.info.run_id, key), key
    val_steps = [m.step for m in client.get_metric_history(mrun.info.run_id, "val/loss")]
    assert sorted(val_steps) == [0, 6, 12]
    artifacts = {a.path for a in client.list_artifacts(mrun.info.run_id)}
    assert {"config.yaml", "provenance.json", "train.log"} <= artifacts


def test_sweep_runs_each_job_in_its_own_folder_and_mlflow_run(tmp_path: Path, quick_overrides) -> None:
    overrides = [*_four_steps(quick_overrides), "trainer.val_at_start=false"]
    proc = run_cli(["-m", *overrides, "optimizer.lr=1e-3,3e-4"], cwd=tmp_path)
    _ok(proc)
    (sweep,) = (tmp_path / "outputs" / "default" / "sweeps").iterdir()
    for job in ("0", "1"):
        assert (sweep / job / "model" / "model.safetensors").exists()
        assert (sweep / job / "config.yaml").exists()
    client = _client(tmp_path / "outputs")
    every = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    (parent,) = [r for r in every if r.info.run_name == f"sweep {sweep.name}"]  # one run for the sweep
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep_jobs"] == "2"
    runs = [r for r in every if r is not parent]
    assert sorted(r.info.run_name for r in runs) == ["lr=0.0003", "lr=0.001"]  # named by the swept values
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    assert sorted(r.data.params["optimizer.lr"] for r in runs) == ["0.0003", "0.001"]
    assert {r.data.tags["sweep"] for r in runs} == {sweep.name}
    assert sorted(r.data.tags["sweep_job"] for r in runs) == ["0", "1"]
    # The table at the end: each job's swept values, status and final val loss, the best one marked.
    labels = {r.data.tags["sweep_job"]: r.info.run_name for r in runs}
    last = {r.data.tags["sweep_job"]: client.get_metric_history(r.info.run_id, "val/loss") for r in runs}
    final = {job: max(points, key=lambda m: m.step).value for job, points in last.items()}
    best, width = min(final, key=final.get), max(len(label) for label in labels.values())
    assert f"sweep {sweep.name}: 2 jobs (val loss, lower is better; * best)" in proc.stdout
    for job, loss in final.items():
        mark = "*" if job == best else " "
        row = f" {mark}   {job}  {labels[job]:<{width}}  finished   {loss:>8.4f}  {sweep / job}"
        assert row in proc.stdout, (row, proc.stdout[-2000:])
        record = json.loads((sweep / job / "result.json").read_text())
        assert record["params"] == {"optimizer.lr": labels[job].removeprefix("lr=")}
        assert record["metrics"]["val/loss"] == pytest.approx(loss)


def test_tracker_none_and_local_alpaca_file(tmp_path: Path, quick_overrides) -> None:
    rows = json.loads(Path(asset_path("data/tiny_tasks/train.json")).read_text())[:300]
    alpaca = tmp_path / "alpaca_local.json"
    alpaca.write_text(json.dumps([{k: r[k] for k in ("instruction", "input", "output")} for r in rows]))
    proc = run_cli(
        [
            *[o for o in quick_overrides if not o.startswith("data.datasets.tiny_tasks")],
            "data=alpaca",
            f"data.datasets.alpaca.path={alpaca}",
            "data.sequence_len=256",
            "data.val_count=20",
            "tracker=none",
            "run.name=alp",
        ],
        cwd=tmp_path,
    )
    _ok(proc)
    assert (tmp_path / "outputs" / "default" / "alp" / "model" / "model.safetensors").exists()
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    assert "tracking   off (tracker=none)" in proc.stdout


def test_ddp_on_two_cpu_processes(tmp_path: Path, quick_overrides) -> None:
    overrides = _four_steps(quick_overrides)
    proc = run_cli(
        [
            *overrides,
            "parallelism=ddp",
            "parallelism.devices=2",
            "data.global_batch=64",
            "tracker=none",
            "run.name=ddp",
        ],
        cwd=tmp_path,
    )
    _ok(proc)
    assert proc.stdout.count("trainer: run default/ddp") == 1  # the summary is printed by rank 0 only
    assert "global 64 = micro 32 x accum 1 x 2 rank(s)" in proc.stdout
    assert (tmp_path / "outputs" / "default" / "ddp" / "model" / "model.safetensors").exists()


def test_keep_last_and_keep_best_prune_checkpoints(tmp_path: Path, quick_overrides) -> None:
    overrides = [o for o in quick_overrides if not o.startswith("trainer.")]
    proc = run_cli(
        [
            *overrides,
            "trainer.max_steps=12",
            "trainer.val_every=4",
            "trainer.checkpoint_every=3",
            "trainer.keep_last=2",
            "trainer.keep_best=1",
            "trainer.best_metric=val/loss",
            "trainer.progress_bar=false",
            "trainer.export_model=false",
            "tracker=none",
            "run.name=keep",
        ],
        cwd=tmp_path,
    )
    _ok(proc)
    names = sorted(p.name for p in (tmp_path / "outputs" / "default" / "keep" / "checkpoints").iterdir())
    # Periodic at 3, 6, 9, 12 pruned to the newest two; the best by val/loss (falling) is the one at step 12.
    assert names == ["best-step-000012.ckpt", "last.ckpt", "step-000009.ckpt", "step-000012.ckpt"], names


def test_bad_config_exits_2_with_every_problem_and_no_traceback(tmp_path: Path) -> None:
    proc = run_cli(["optimizer.lr=abc", "parallelism.strategy=fdsp"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "optimizer.lr=abc: Input should be a valid number" in proc.stderr
    expected = "strategy=fdsp: unknown option (valid: single, ddp, fsdp, deepspeed); did you mean fsdp?"
    assert expected in proc.stderr


def test_validation_failure_imports_no_heavy_module(tmp_path: Path) -> None:
    code = (
        "import sys\nsys.argv = ['trainer', 'optimizer.lr=abc']\nfrom trainer.__main__ import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = [m for m in ('torch', 'lightning', 'transformers', 'mlflow') if m in sys.modules]\n"
        "print('RESULT', code, heavy)\n"
    )
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=cli_env(), capture_output=True, text=True
    )
    assert "RESULT 2 []" in proc.stdout, proc.stdout + proc.stderr


def test_unreachable_hub_model_fails_fast_with_local_path_hint(tmp_path: Path) -> None:
    env = cli_env(HF_ENDPOINT="http://127.0.0.1:9")
    env.pop("HF_HUB_OFFLINE")
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "model=llama", f"run.output_root={tmp_path}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "model.name_or_path=meta-llama/Llama-3.2-1B: not a local path" in proc.stderr
    assert "pass model.name_or_path=DIR" in proc.stderr
    # The probe's words (not transformers' after its retries): reported before torch loads. Its time is
    # in benchmarks/train_throughput.py.
    assert "the Hugging Face hub (127.0.0.1) cannot be reached" in proc.stderr


def test_train_function_is_callable_without_hydra(tmp_path: Path) -> None:
    from trainer.training.train import train

    cfg = load_config(
        [
            "tracker=none",
            "trainer.max_steps=20",
            "trainer.val_every=20",
            "trainer.checkpoint_every=disable",
            "trainer.progress_bar=false",
            "data.datasets.tiny_tasks.count=800",
        ],
        run_dir=tmp_path / "run",
    )
    result = train(cfg)
    assert result.val_loss is not None and result.val_loss < result.baseline["val/loss"] - 1.0
    assert (tmp_path / "run" / "model" / "config.json").exists()
