"""`trainer generate`, `trainer evaluate`, `trainer merge` on real (short) runs.

Two runs are trained once for the module, side by side: a full fine-tune and a LoRA (peft=lora on the
built-in tiny model, whose base export saves). The CLI is exercised where the exit status, printing or
MLflow matter; everything else calls the command functions in-process, which is far cheaper than a
subprocess that imports torch again.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.conftest import finish_runs, invocation, load_config, run_cli, start_run
from trainer.config import ConfigError
from trainer.errors import UserError

pytestmark = pytest.mark.slow

PROMPT = "Reverse the order of the letters."
RECORDS = [
    {"instruction": "Add the two numbers.", "input": "8 + 36"},
    {"instruction": "Sort the letters alphabetically.", "input": "s d k a"},
]


@dataclass(frozen=True)
class Runs:
    root: Path
    full: Path
    lora: Path

    @property
    def db(self) -> str:
        return f"sqlite:///{self.root / 'outputs' / 'mlflow.db'}"


SIX_STEPS = ("trainer.max_steps=6", "trainer.val_every=6", "data.datasets.tiny_tasks.count=192")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("commands")
    finish_runs(
        {
            "full": start_run(root, "full", *SIX_STEPS),
            "lora": start_run(root, "lora", *SIX_STEPS, "peft=lora", "tracker=none"),
        }
    )
    return Runs(root, root / "outputs" / "default" / "full", root / "outputs" / "default" / "lora")


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _final_val_loss(client: MlflowClient, run_dir: Path) -> tuple[str, float, int]:
    run_id = (run_dir / "mlflow_run_id").read_text().strip()
    (last,) = [m for m in client.get_metric_history(run_id, "val/loss") if m.step == 6]
    return run_id, last.value, last.step


# --- generate ----------------------------------------------------------------------------------------


def test_generate_prints_completions_for_prompts_and_a_prompt_file(runs: Runs, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.config.dataset import AlpacaFormat
    from trainer.data.formats import generation_prompt_ids

    prompt_file = tmp_path / "prompts.jsonl"
    prompt_file.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    args = [f"infer.source={runs.full}", f"infer.prompts=[{PROMPT}]", f"infer.prompt_file={prompt_file}"]
    proc = run_cli(["generate", *args, "infer.max_new_tokens=8"], cwd=tmp_path)
    _ok(proc)
    lines = proc.stdout.splitlines()
    assert lines[0] == f"trainer generate: {runs.full} (alpaca format, greedy, seed 1234)"
    assert f"> {PROMPT}" in lines and "> Add the two numbers." in lines and "> 8 + 36" in lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts.jsonl"]  # no run folder, no .hydra/

    # Greedy completions are what plain transformers gives for the prompt rendered as in training.
    tok = AutoTokenizer.from_pretrained(runs.full / "model")
    model = AutoModelForCausalLM.from_pretrained(runs.full / "model")
    fmt = AlpacaFormat(template="alpaca_short")
    for record in ({"instruction": PROMPT}, *RECORDS):
        ids = torch.tensor([generation_prompt_ids(record, fmt, tok, None)])
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False
        )
        expected = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        prompt_line = lines.index(f"> {record['instruction']}")
        shown_at = prompt_line + 1 if "input" not in record else lines.index(f"> {record['input']}") + 3
        assert lines[shown_at] == expected, (record, lines)


def test_generate_sampling_is_seeded_and_streams(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    from trainer.commands.generate import generate

    def sample(seed: int, stream: bool = False) -> list[str]:
        args = [
            f"infer.source={runs.full}",
            "infer.prompts=[Say hi,Add the two numbers.]",
            "infer.do_sample=true",
            "infer.temperature=3.0",
            "infer.max_new_tokens=12",
            f"infer.seed={seed}",
        ]
        return generate(invocation(args), stream=stream)

    first, again, other = sample(7), sample(7), sample(8)
    assert first == again and first != other
    assert all(first), first  # at this temperature the tiny model does not stop at once
    printed = capsys.readouterr().out
    assert printed.count("> Say hi") == 3 and first[0] in printed
    # Streaming (TextStreamer, what a terminal gets) prints the same completions as they are generated.
    assert sample(7, stream=True) == first
    streamed = capsys.readouterr().out
    assert f"> Say hi\n{first[0]}\n" in streamed and f"> Add the two numbers.\n{first[1]}\n" in streamed


# --- evaluate ----------------------------------------------------------------------------------------


def test_evaluate_reproduces_the_final_val_loss_and_logs_to_the_run(runs: Runs, tmp_path: Path) -> None:
    proc = run_cli(["evaluate", f"infer.source={runs.full}"], cwd=tmp_path)
    _ok(proc)
    client = MlflowClient(tracking_uri=runs.db)
    run_id, val_loss, step = _final_val_loss(client, runs.full)
    printed = float(re.search(r"loss\s+([0-9.]+)", proc.stdout).group(1))
    assert abs(printed - val_loss) < 1e-4
    metrics = client.get_run(run_id).data.metrics
    assert abs(metrics["eval/loss"] - val_loss) < 1e-4
    assert metrics["eval/perplexity"] == pytest.approx(math.exp(metrics["eval/loss"]))
    assert 0.0 <= metrics["eval/exact_match"] <= 1.0 and metrics["eval/examples"] == 240
    assert [m.step for m in client.get_metric_history(run_id, "eval/loss")] == [step]
    assert "perplexity" in proc.stdout and "exact match" in proc.stdout and run_id in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_evaluate_a_model_folder_on_the_composed_data(runs: Runs) -> None:
    """A model folder takes the composed config's data (here the same validation set) and tracker."""
    from trainer.commands.evaluate import evaluate

    _, val_loss, _ = _final_val_loss(MlflowClient(tracking_uri=runs.db), runs.full)
    args = [f"infer.source={runs.full / 'model'}", "tracker=none", "infer.batch_size=7"]
    assert abs(evaluate(invocation(args)).loss - val_loss) < 1e-4
    args = [
        f"infer.source={runs.full / 'model'}",
        "tracker=none",
        "infer.split=train",
        "infer.max_examples=9",
    ]
    scores = evaluate(invocation(args))
    assert scores.examples == 9 and scores.metrics("train")["eval_train/examples"] == 9


# --- merge -------------------------------------------------------------------------------------------


def test_merge_writes_a_full_model_with_the_adapter_logits(runs: Runs, tmp_path: Path) -> None:
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    proc = run_cli(["merge", f"infer.source={runs.lora}"], cwd=tmp_path)
    _ok(proc)
    merged = runs.lora / "model_merged"
    assert f"-> {merged}" in proc.stdout
    assert (merged / "config.json").exists() and not (merged / "adapter_config.json").exists()
    full = AutoModelForCausalLM.from_pretrained(merged)
    adapter = AutoPeftModelForCausalLM.from_pretrained(runs.lora / "model")
    ids = torch.tensor([[1, 40, 41, 42, 43, 44, 45, 46]])
    with torch.no_grad():
        assert torch.allclose(full(ids).logits, adapter(ids).logits, atol=1e-5, rtol=0)


# --- mistakes ----------------------------------------------------------------------------------------


MISTAKES = [
    (
        "generate",
        ["infer.source={root}/nope", "infer.prompts=[hi]"],
        "trainer: error: infer.source={root}/nope: no such folder",
    ),
    (
        "merge",
        ["infer.source={full}"],
        "trainer: error: infer.source={full}: merge needs a PEFT adapter "
        "({full}/model holds a full model: nothing to merge)",
    ),
    (
        "generate",
        ["infer.source={full}"],
        "  infer.prompts=[]: generate needs something to complete; "
        "pass 'infer.prompts=[Reverse the words.]' or infer.prompt_file=FILE",
    ),
]


@pytest.mark.parametrize(("command", "args", "line"), MISTAKES)
def test_mistakes_exit_2_with_one_line(
    runs: Runs, tmp_path: Path, command: str, args: list[str], line: str
) -> None:
    names = {"root": runs.root, "full": runs.full}
    proc = run_cli([command, *(a.format(**names) for a in args)], cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert line.format(**names) in proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr and list(tmp_path.iterdir()) == []


def test_more_mistakes_name_the_key_and_the_fix(runs: Runs, tmp_path: Path) -> None:
    from trainer.commands.generate import generate
    from trainer.commands.merge import merge

    def error(command, args: list[str]) -> str:
        with pytest.raises((UserError, ConfigError)) as caught:
            command(invocation(args))
        err = caught.value
        return err.problems[0].render() if isinstance(err, ConfigError) else err.render()

    (tmp_path / "empty").mkdir()
    no_base = tmp_path / "adapter"
    no_base.mkdir()
    (no_base / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": None}))
    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_text('{"instruction": 3}\n')
    broken_run = tmp_path / "broken_run"
    shutil.copytree(runs.full, broken_run)
    (broken_run / "config.yaml").write_text("run: [not closed\n")
    source = f"infer.source={runs.full}"
    run_folder = (
        "is a run folder, which brings its own config; data.eval_batch set on the command line would not "
        "change it"
    )
    cases = [
        (generate, [source, "data.eval_batch=8", "infer.prompts=[hi]"], run_folder),
        (
            generate,
            [f"infer.source={tmp_path / 'empty'}", "infer.prompts=[a]"],
            "not a run, model or adapter",
        ),
        (generate, [source, f"infer.prompt_file={tmp_path / 'none.json'}"], "none.json: file not found"),
        (generate, [source, f"infer.prompt_file={bad_file}"], "bad.jsonl: record 0 has no text field"),
        (merge, [f"infer.source={no_base}"], "the adapter names no base model"),
        (generate, [f"infer.source={broken_run}", "infer.prompts=[a]"], "its config.yaml cannot be read"),
        (merge, ["infer.out=x"], "merge needs a PEFT adapter (no infer.source: nothing to merge)"),
    ]
    for command, args, expected in cases:
        assert expected in error(command, args), args


def test_infer_config_rules() -> None:
    def problems(args: list[str]) -> list[str]:
        with pytest.raises(ConfigError) as caught:
            load_config(args)
        return [p.render() for p in caught.value.problems]

    assert problems(["infer.top_k=5"]) == [
        "  infer.top_k=5: has no effect with greedy decoding; set infer.do_sample=true, or drop infer.top_k"
    ]
    assert problems(["infer.prompts=[' ']"]) == [
        "  infer.prompts=[' ']: prompt 0 is empty; give each prompt some text"
    ]
    assert "infer.top_p=1.5" in problems(["infer.do_sample=true", "infer.top_p=1.5"])[0]
    cfg = load_config(["infer.do_sample=true", "infer.temperature=0.7", "infer.top_p=0.9", "infer.top_k=20"])
    assert (cfg.infer.temperature, cfg.infer.top_p, cfg.infer.top_k) == (0.7, 0.9, 20)
