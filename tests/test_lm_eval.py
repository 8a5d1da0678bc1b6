"""`trainer evaluate infer.tasks=[...]`: lm-evaluation-harness tasks on a real (short) run.

One run is trained for the module, logging to a real `mlflow server`. The shipped tasks are run through
the CLI and their results checked three ways (the printed table, the JSON file, the run's MLflow run),
and the multiple-choice accuracy against a computation of our own with plain transformers. Mistakes are
checked for the message a user sees; those that need a process of their own (lm-eval not importable,
the hub offline) run the CLI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.conftest import (
    ROOT,
    finish_runs,
    free_port,
    invocation,
    load_config,
    run_cli,
    start_mlflow_server,
    start_run,
    stop_server,
)
from trainer.config import ConfigError
from trainer.errors import UserError

pytestmark = pytest.mark.slow

SHIPPED = ROOT / "trainer" / "assets" / "lm_eval_tasks"


@dataclass(frozen=True)
class Trained:
    root: Path
    run: Path  # a full fine-tune, tracked on the server
    lora: Path  # peft=lora, tracker=none
    server: str


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lm_eval")
    port = free_port()
    server = start_mlflow_server(root, port)
    uri = f"http://127.0.0.1:{port}"
    try:
        six = ("trainer.max_steps=6", "trainer.val_every=6", "data.datasets.tiny_tasks.count=192")
        tracked = (f"tracker.uri={uri}", "tracker.system_metrics_every_s=null")
        finish_runs(
            {
                "short": start_run(root, "short", *six, *tracked),
                "lora": start_run(root, "lora", *six, "peft=lora", "tracker=none"),
            }
        )
        runs = root / "outputs" / "default"
        yield Trained(root, runs / "short", runs / "lora", uri)
    finally:
        stop_server(server)


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _table(stdout: str) -> dict[tuple[str, str], list[str]]:
    """The printed table: (task, metric) -> [value, stderr, n-shot, samples]."""
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in stdout.splitlines() if "│" in line]
    return {(row[0], row[1]): row[2:] for row in cells if len(row) == 6}


def _error(stderr: str) -> list[str]:
    """The error line a UserError prints and its fix line."""
    lines = stderr.splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.startswith("trainer: error: ")]
    return lines[at : at + 2]


def _records(n: int) -> list[dict]:
    lines = (SHIPPED / "tiny_tasks.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[:n]]


def _own_scores(model_dir: Path, records: list[dict]) -> tuple[float, float]:
    """Accuracy and exact match computed without lm-eval: each choice's log-likelihood after the training
    prompt (ids as training encodes them), and the greedy answer up to its line's end."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.data.formats.alpaca import render_prompt

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    adapter = (model_dir / "adapter_config.json").exists()
    model = (AutoPeftModelForCausalLM if adapter else AutoModelForCausalLM).from_pretrained(model_dir).eval()
    right = exact = 0
    for record in records:
        prompt = tokenizer(render_prompt(record["instruction"], record["input"], "", "alpaca_short"))
        context = prompt["input_ids"]
        scores = []
        for choice in record["choices"]:
            answer = tokenizer(choice, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = model(torch.tensor([context + answer])).logits[0].double()
            logprobs = torch.log_softmax(logits[len(context) - 1 : -1], dim=-1)
            scores.append(sum(logprobs[i, t].item() for i, t in enumerate(answer)))
        right += max(range(len(scores)), key=scores.__getitem__) == record["label"]
        with torch.no_grad():
            out = model.generate(torch.tensor([context]), max_new_tokens=24, do_sample=False)
        text = tokenizer.decode(out[0, len(context) :], skip_special_tokens=True)
        exact += text.split("\n")[0].strip() == record["output"]
    return right / len(records), exact / len(records)


def test_shipped_tasks_print_save_and_log_the_same_scores(trained: Trained, tmp_path: Path) -> None:
    args = [f"infer.source={trained.run}", "infer.tasks=[tiny_tasks_mc,tiny_tasks_gen]", "infer.limit=12"]
    proc = run_cli(["evaluate", *args], cwd=tmp_path)
    _ok(proc)
    table = _table(proc.stdout)
    assert sorted(table) == [
        ("tiny_tasks_gen", "exact_match (strip)"),
        ("tiny_tasks_mc", "acc"),
        ("tiny_tasks_mc", "acc_norm"),
    ]
    assert all(row[2:] == ["0", "12"] for row in table.values())  # zero-shot, 12 documents each
    # The JSON file in the run folder holds the same values, and what was asked.
    (file,) = (trained.run / "evaluations").glob("lm_eval-*.json")
    assert file.name in proc.stdout
    saved = json.loads(file.read_text())
    assert (
        saved["trainer"]["tasks"] == ["tiny_tasks_mc", "tiny_tasks_gen"] and saved["trainer"]["limit"] == 12
    )
    results = saved["results"]
    acc, gen = results["tiny_tasks_mc"]["acc,none"], results["tiny_tasks_gen"]["exact_match,strip"]
    assert table[("tiny_tasks_mc", "acc")][0] == f"{acc:.4f}"
    assert table[("tiny_tasks_gen", "exact_match (strip)")][0] == f"{gen:.4f}"
    assert saved["n-samples"]["tiny_tasks_mc"] == {"original": 36, "effective": 12}
    # The same values in the run's own MLflow run, on the server.
    run_id = (trained.run / "mlflow_run_id").read_text().strip()
    metrics = MlflowClient(tracking_uri=trained.server).get_run(run_id).data.metrics
    assert metrics["lm_eval/tiny_tasks_mc/acc"] == pytest.approx(acc)
    assert metrics["lm_eval/tiny_tasks_mc/acc_stderr"] == pytest.approx(
        results["tiny_tasks_mc"]["acc_stderr,none"]
    )
    assert metrics["lm_eval/tiny_tasks_mc/acc_norm"] == pytest.approx(
        results["tiny_tasks_mc"]["acc_norm,none"]
    )
    assert metrics["lm_eval/tiny_tasks_gen/exact_match/strip"] == pytest.approx(gen)
    assert metrics["lm_eval/tiny_tasks_mc/samples"] == 12 and run_id in proc.stdout
    # And the scores are the model's: computed again without lm-eval.
    own_acc, own_exact = _own_scores(trained.run / "model", _records(12))
    assert acc == pytest.approx(own_acc) and gen == pytest.approx(own_exact)
    assert list(tmp_path.iterdir()) == []  # nothing written where the command ran


def test_an_adapter_is_scored_with_its_adapter(trained: Trained) -> None:
    """A LoRA run's model is handed to lm-eval as base + adapter (not merged): its score is the adapted
    model's, computed again with peft."""
    from trainer.commands.evaluate import evaluate

    result = evaluate(
        invocation([f"infer.source={trained.lora}", "infer.tasks=[tiny_tasks_mc]", "infer.limit=12"])
    )
    acc = next(row.value for row in result.rows if row.metric == "acc")
    assert acc == pytest.approx(_own_scores(trained.lora / "model", _records(12))[0])
    assert result.file.parent == trained.lora / "evaluations" and result.tracked_run is None


def test_a_task_of_ones_own_in_task_dirs(trained: Trained, tmp_path: Path) -> None:
    """A user's YAML over a local JSONL, few-shot, chat template on, from a model folder (the JSON then goes
    to the experiment's evaluations/, not into the model folder)."""
    from trainer.commands.evaluate import evaluate

    tasks = tmp_path / "my_tasks"
    tasks.mkdir()
    docs = tasks / "colours.jsonl"
    rows = [("grass", 0), ("sky", 1), ("snow", 2), ("coal", 3), ("blood", 4)]
    docs.write_text("".join(json.dumps({"thing": t, "label": i}) + "\n" for t, i in rows))
    (tasks / "colours.yaml").write_text(
        "task: my_colours\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {docs}\n    train: {docs}\n"
        "test_split: test\nfewshot_split: train\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "What colour is {{thing}}?"\n'
        "doc_to_choice: [green, blue, white, black, red]\n"
        "doc_to_target: label\n"
        "metric_list:\n  - metric: acc\n"
    )
    model = trained.run / "model"
    before = sorted(p.name for p in model.iterdir())
    args = [
        f"infer.source={model}",
        "infer.tasks=[my_colours]",
        f"infer.task_dirs=[{tasks}]",
        "infer.num_fewshot=2",
        "infer.limit=3",
        "infer.apply_chat_template=true",
        "tracker=none",
        f"run.output_root={tmp_path / 'out'}",
    ]
    result = evaluate(invocation(args))
    (row,) = result.rows
    assert (row.task, row.metric, row.n_shot, row.samples) == ("my_colours", "acc", 2, 3)
    assert result.tracked_run is None and result.file.parent == tmp_path / "out" / "default" / "evaluations"
    saved = json.loads(result.file.read_text())
    assert saved["results"]["my_colours"]["acc,none"] == row.value
    assert saved["trainer"]["apply_chat_template"] is True and saved["trainer"]["source_kind"] == "model"
    assert saved["configs"]["my_colours"]["num_fewshot"] == 2
    assert sorted(p.name for p in model.iterdir()) == before


def test_unknown_task_names_close_ones_and_task_dirs(trained: Trained) -> None:
    from trainer.commands.evaluate import evaluate

    with pytest.raises(UserError) as caught:
        evaluate(invocation([f"infer.source={trained.run}", "infer.tasks=[tiny_tasks_mc,helaswag]"]))
    text = caught.value.render()
    assert "infer.tasks: unknown lm-eval task helaswag (close: hellaswag" in text
    assert "infer.task_dirs=[FOLDER]" in text


def test_a_hub_task_offline_says_how_to_use_local_data(trained: Trained, tmp_path: Path) -> None:
    args = ["evaluate", f"infer.source={trained.run}", "infer.tasks=[arc_easy]"]
    proc = run_cli(args, cwd=tmp_path, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    first, fix = _error(proc.stderr)
    assert first.startswith(
        "trainer: error: infer.tasks: task arc_easy could not load its dataset allenai/ai2_arc"
    )
    assert "(ARC-Easy)" in first and "offline: HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1" in first
    assert "set `dataset_path: json`" in fix and "infer.task_dirs=[FOLDER]" in fix and "arc_easy.yaml" in fix
    assert "Traceback" not in proc.stderr and "Loading weights" not in proc.stderr  # no model was loaded


def test_without_lm_eval_it_says_which_extra_to_install(trained: Trained, tmp_path: Path) -> None:
    broken = tmp_path / "site" / "lm_eval"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('No module named lm_eval (test)')\n")
    path = os.pathsep.join([str(broken.parent), str(ROOT)])
    args = ["evaluate", f"infer.source={trained.run}", "infer.tasks=[tiny_tasks_mc]"]
    proc = run_cli(args, cwd=tmp_path, PYTHONPATH=path)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert _error(proc.stderr) == [
        "trainer: error: infer.tasks=[tiny_tasks_mc]: running lm-eval tasks needs lm-evaluation-harness, "
        "which is not installed (No module named lm_eval (test))",
        "  fix: pip install 'trainer[eval]', or drop infer.tasks to score the run's own data",
    ]


def test_task_dirs_must_exist(trained: Trained, tmp_path: Path) -> None:
    from trainer.commands.evaluate import evaluate

    args = [
        f"infer.source={trained.run}",
        "infer.tasks=[tiny_tasks_mc]",
        f"infer.task_dirs=[{tmp_path / 'no'}]",
    ]
    with pytest.raises(UserError, match=re.escape(f"infer.task_dirs: {tmp_path / 'no'}: no such folder")):
        evaluate(invocation(args))


def test_local_data_missing_and_no_chat_template(trained: Trained, tmp_path: Path) -> None:
    from trainer.commands.evaluate import evaluate

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "gone.yaml").write_text(
        "task: gone\ndataset_path: json\ndataset_kwargs:\n  data_files: {test: nowhere.jsonl}\n"
        "test_split: test\noutput_type: generate_until\ndoc_to_text: '{{q}}'\ndoc_to_target: '{{a}}'\n"
    )
    args = [f"infer.source={trained.run}", "infer.tasks=[gone]", f"infer.task_dirs=[{tasks}]"]
    with pytest.raises(UserError) as caught:
        evaluate(invocation(args))
    text = caught.value.render()
    assert "infer.tasks: task gone could not load its dataset json (FileNotFoundError: " in text
    assert f"check dataset_kwargs.data_files in {tasks / 'gone.yaml'}" in text and "offline" not in text
    # A tokenizer without a chat template cannot wrap prompts in one.
    model = tmp_path / "model"
    shutil.copytree(trained.run / "model", model)
    (model / "chat_template.jinja").unlink()
    args = [
        f"infer.source={model}",
        "infer.tasks=[tiny_tasks_mc]",
        "infer.apply_chat_template=true",
        "tracker=none",
    ]
    with pytest.raises(UserError, match=re.escape(f"the tokenizer of {model} has no chat template")):
        evaluate(invocation(args))


def test_infer_task_keys_are_checked_with_the_config() -> None:
    def problem(args: list[str]) -> str:
        with pytest.raises(ConfigError) as caught:
            load_config(args)
        (only,) = caught.value.problems
        return only.render().strip()

    alone = "applies to lm-eval tasks only; set infer.tasks=[TASK,...], or drop infer.{}"
    assert problem(["infer.num_fewshot=2"]) == "infer.num_fewshot=2: " + alone.format("num_fewshot")
    assert problem(["infer.limit=5"]) == "infer.limit=5: " + alone.format("limit")
    assert problem(["infer.apply_chat_template=true"]).endswith(alone.format("apply_chat_template"))
    assert problem(["infer.task_dirs=[x]"]).endswith(alone.format("task_dirs"))
    tasks = "infer.tasks=[tiny_tasks_mc]"
    fraction = "give a count N >= 1 or a fraction 0 < X < 1 of each task's documents"
    assert problem([tasks, "infer.limit=1.5"]) == f"infer.limit=1.5: {fraction}"
    assert problem([tasks, "infer.limit=0"]) == f"infer.limit=0: {fraction}"
    assert "infer.num_fewshot=-1" in problem([tasks, "infer.num_fewshot=-1"])
    assert problem(["infer.tasks=[a,b,a]"]).endswith("a given twice; name each task once")
    assert problem([tasks, "infer.max_examples=3"]).endswith(
        "infer.max_examples counts examples of the data, not of tasks; use infer.limit=N"
    )
    assert problem([tasks, "infer.split=train"]).endswith(
        "infer.split chooses the data scored without tasks; drop it"
    )
    cfg = load_config([tasks, "infer.limit=0.25", "infer.num_fewshot=0"]).infer
    assert (cfg.tasks, cfg.limit, cfg.num_fewshot) == (["tiny_tasks_mc"], 0.25, 0)
    assert load_config([tasks, "infer.limit=4"]).infer.limit == 4
