"""What a run exports stands on its own: the model card (model/README.md) with the run's real figures, a
chat template that renders exactly the training prompt (so `pipeline("text-generation")` with chat
messages prompts the model as training did), and a from-scratch LoRA folder that embeds its base and so
loads after the run folder is moved.

Three runs trained once per module through the CLI (a few steps of the tiny default): full fine-tuning
on the alpaca-format tiny tasks, LoRA from scratch (logged to MLflow), and full fine-tuning on chat data.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from tests.conftest import load_config, run_cli
from trainer.config.dataset import AlpacaFormat, ChatFormat
from trainer.data.chat_templates import resolve_chat_template
from trainer.data.formats import alpaca, generation_prompt_ids
from trainer.models.adapter_folder import load_adapter
from trainer.models.build import load_tokenizer
from trainer.training.metrics_file import read_history
from trainer.training.model_card import Loading, front_matter
from trainer.training.prompt_format import carrying, prompt_format

QUICK = [
    "trainer.max_steps=4",
    "trainer.val_every=4",
    "trainer.checkpoint_every=4",
    "trainer.progress_bar=false",
    "data.datasets.tiny_tasks.count=200",
]
TASKS = Path(__file__).resolve().parents[1] / "trainer" / "assets" / "data" / "tiny_tasks"
# Instructions without an input (what chat messages can carry), one with a system prompt.
RECORDS = [
    {"instruction": "Reverse the order of the letters: n t a w", "output": "w a t n"},
    {"instruction": "Sort the letters alphabetically: s d k a", "output": "a d k s", "system": "Be brief."},
]


def _train(root: Path, name: str, *overrides: str, quick: list[str] = QUICK) -> Path:
    proc = run_cli([*quick, f"run.output_root={root / 'outputs'}", f"run.name={name}", *overrides], root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "outputs" / "default" / name


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tmp_path_factory.mktemp("full"), "full", "tracker=none")


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tmp_path_factory.mktemp("lora"), "lora", "peft=lora", "tracker.log_model=true")


def _chat_records() -> list[dict[str, Any]]:
    tasks = json.loads((TASKS / "train.json").read_text())[:300]
    return [
        {
            "messages": [
                *([{"role": "system", "content": "Answer in one line."}] if i % 2 else []),
                {"role": "user", "content": f"{t['instruction']}\n{t['input']}"},
                {"role": "assistant", "content": t["output"]},
            ]
        }
        for i, t in enumerate(tasks)
    ]


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("chat")
    records = _chat_records()
    (root / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (root / "conf" / "data").mkdir(parents=True)
    (root / "conf" / "data" / "chatty.yaml").write_text(
        f"datasets:\n  chat:\n    path: {root / 'chat.jsonl'}\n    format:\n      type: chat\n"
        "validation: null\nval_count: 20\nsequence_len: 128\nglobal_batch: 32\nmicro_batch: 32\n"
    )
    quick = ["--config-dir", str(root / "conf"), *(o for o in QUICK if not o.startswith("data."))]
    run = _train(root, "chat", "data=chatty", "tracker=none", quick=quick)
    return run, records


# --- the model card ----------------------------------------------------------------------------------------


def test_full_run_card_has_the_metadata_and_the_runs_figures(full_run: Path) -> None:
    card = ModelCard.load(full_run / "model" / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "text-generation"
    assert data["tags"] == ["trainer", "sft", "full", "from-scratch"]
    assert "base_model" not in data and "datasets" not in data and "license" not in data  # local, unknown
    text = card.text
    assert "Trained from scratch (random init), architecture: llama, 4 layers, hidden size 128" in text
    assert "4 optimizer steps" in text and "At step 4:" in text
    assert "adamw, lr 0.002, weight decay 0.01" in text and "cosine, warmup 0 steps" in text
    assert "global 32 = micro 32 x accumulation 1 x 1 rank(s)" in text and "seed 1234" in text
    history = read_history(full_run)
    baseline, final = history["val/loss"][0], history["val/loss"][-1]
    assert (baseline[0], final[0]) == (0, 4)
    assert f"| val loss | {baseline[1]:.4f} | {final[1]:.4f} |" in text
    # The end summary's train loss (train.log): the last step's.
    summary = re.search(r"train loss\s+([0-9.]+)", (full_run / "train.log").read_text())
    assert summary and f"| train loss | | {summary[1]} |" in text
    # Each dataset with its source and counts: 6,000 read and kept, 200 of them in the training set.
    assert (
        "| data.datasets.tiny_tasks | `" in text
        and "| alpaca (alpaca_short) | 6,000 of 6,000 | none |" in text
    )
    assert "| 200 |" in text
    command = json.loads((full_run / "provenance.json").read_text())["command"]
    assert f"```bash\n{command}\n```" in text and "run.name=full" in command
    assert "AutoModelForCausalLM" not in text.split("## How to prompt it")[1].split("```python")[0]
    assert 'pipeline("text-generation", model=model_dir)' in text


def test_lora_card_replaces_pefts_template(lora_run: Path) -> None:
    card = ModelCard.load(lora_run / "model" / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "peft" and data["tags"] == ["trainer", "sft", "lora", "from-scratch"]
    assert "base_model" not in data  # PEFT's template wrote base_model: ''
    assert "LoRA r=8, alpha=16 (scale alpha / r), dropout 0, targets all-linear" in card.text
    assert "The base weights are saved in this folder beside the adapter" in card.text
    assert (
        "PeftModel.from_pretrained(base, model_dir)" in card.text and "tokenizer=model_dir" not in card.text
    )


def test_hub_ids_become_base_model_and_datasets() -> None:
    cfg = load_config(["model=qwen2_5_0_5b", "data=alpaca", "peft=lora"])
    meta = front_matter(cfg, Loading(adapter=True, embedded_base=False))
    assert meta["base_model"] == "Qwen/Qwen2.5-0.5B" and meta["datasets"] == ["tatsu-lab/alpaca"]
    assert meta["library_name"] == "peft" and meta["tags"][:3] == ["trainer", "sft", "lora"]


# --- the chat template is the training prompt format ------------------------------------------------------


def _training_tokenizer() -> Any:
    return load_tokenizer(load_config([]).model)


def _messages(record: dict[str, str]) -> list[dict[str, str]]:
    system = [{"role": "system", "content": record["system"]}] if record.get("system") else []
    return [*system, {"role": "user", "content": record["instruction"]}]


def _greedy(model: Any, ids: list[int], tokenizer: Any, n: int = 6) -> str:
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False)
    return tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)


def _pipeline_reply(model_dir: Path, messages: list[dict[str, str]], n: int = 6) -> str:
    generate = pipeline("text-generation", model=str(model_dir))
    return generate(messages, max_new_tokens=n, do_sample=False)[0]["generated_text"][-1]["content"]


def test_alpaca_template_gives_the_training_prompt_ids(full_run: Path) -> None:
    exported = AutoTokenizer.from_pretrained(full_run / "model")
    training, fmt = _training_tokenizer(), AlpacaFormat(template="alpaca_short")
    for record in RECORDS:
        ids = exported.apply_chat_template(_messages(record), add_generation_prompt=True, tokenize=True)
        assert ids["input_ids"] == generation_prompt_ids(record, fmt, training, None)
    # An earlier turn is not shown (training was single-turn): the last user message is the prompt.
    earlier = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    again = exported.apply_chat_template([*earlier, *_messages(RECORDS[0])], add_generation_prompt=True)
    assert again["input_ids"] == generation_prompt_ids(RECORDS[0], fmt, training, None)


@pytest.mark.parametrize("style", ["alpaca", "alpaca_short"])
def test_alpaca_template_writes_the_bos_training_adds(style: str) -> None:
    """A tokenizer that puts bos first (Llama's): training's prompt ids start with it, and the template
    writes it because apply_chat_template adds no special tokens; a reply renders as a training example."""
    tok = AutoTokenizer.from_pretrained(
        Path(alpaca.__file__).parents[2] / "assets" / "tokenizer", add_bos_token=True
    )
    fmt = AlpacaFormat(template=style)
    cfg = load_config([f"data.datasets.tiny_tasks.format.template={style}"])
    template = prompt_format(cfg, tok).template
    assert "{{- bos_token }}" in template and "earlier turns are left out" in template
    for record in RECORDS:
        ids = tok.apply_chat_template(_messages(record), chat_template=template, add_generation_prompt=True)
        expected = generation_prompt_ids(record, fmt, tok, None)
        assert ids["input_ids"] == expected and expected[0] == tok.bos_token_id
        full = [*_messages(record), {"role": "assistant", "content": record["output"]}]
        example = tok.apply_chat_template(full, chat_template=template)["input_ids"]
        reply = tok(record["output"], add_special_tokens=False)["input_ids"]
        assert example == expected + reply + [tok.eos_token_id]


def test_pipeline_with_chat_messages_answers_as_the_training_format(full_run: Path) -> None:
    model_dir = full_run / "model"
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    training, fmt = _training_tokenizer(), AlpacaFormat(template="alpaca_short")
    for record in RECORDS:
        expected = _greedy(model, generation_prompt_ids(record, fmt, training, None), training)
        assert _pipeline_reply(model_dir, _messages(record)) == expected


def test_chat_data_exports_the_template_it_was_rendered_with(chat_run) -> None:
    run, records = chat_run
    model_dir = run / "model"
    exported = AutoTokenizer.from_pretrained(model_dir)
    training = _training_tokenizer()
    template = resolve_chat_template("auto", training)
    assert exported.chat_template == template
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    for record in records[:2]:  # with and without a system message
        prompt = record["messages"][:-1]
        ids = exported.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)["input_ids"]
        expected = generation_prompt_ids(record, ChatFormat(), training, template)
        assert ids == expected
        assert _pipeline_reply(model_dir, prompt) == _greedy(model, expected, training)
    card = ModelCard.load(model_dir / "README.md")
    assert "trained on conversations (data.datasets.chat, format chat)" in card.text
    assert "| 280 |" in card.text  # 300 records, 20 held out for validation


def test_raw_text_formats_export_no_chat_template(tmp_path: Path) -> None:
    tok = _training_tokenizer()
    own = tok.chat_template
    alpaca_keys = ("template", "instruction", "input", "output", "system")
    cfg = load_config(
        ["data.datasets.tiny_tasks.format.type=completion"]
        + [f"~data.datasets.tiny_tasks.format.{k}" for k in alpaca_keys]
    )
    fmt = prompt_format(cfg, tok)
    assert (fmt.kind, fmt.template) == ("raw", None)
    with carrying(tok, fmt):
        tok.save_pretrained(tmp_path)
    assert tok.chat_template == own  # the same tokenizer serves generation after the export
    assert not (tmp_path / "chat_template.jinja").exists()
    assert AutoTokenizer.from_pretrained(tmp_path).chat_template is None


# --- a from-scratch LoRA folder embeds its base and moves with its run -----------------------------------


def test_mlflow_logged_model_is_the_whole_folder(lora_run: Path, tmp_path: Path) -> None:
    import mlflow

    uri = f"sqlite:///{lora_run.parents[1] / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    (model,) = client.search_logged_models(
        experiment_ids=[client.get_experiment_by_name("default").experiment_id]
    )
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=model.artifact_location, tracking_uri=uri,
                                                      dst_path=str(tmp_path)))  # fmt: skip
    assert (folder / "README.md").read_text() == (lora_run / "model" / "README.md").read_text()
    ids = torch.tensor([[5, 40, 41, 42]])
    with torch.no_grad():
        got = AutoModelForCausalLM.from_pretrained(folder)(ids).logits
        want = AutoModelForCausalLM.from_pretrained(lora_run / "model")(ids).logits
    assert torch.equal(got, want)


def _state(model_dir: Path, ids: torch.Tensor) -> tuple[torch.Tensor, str]:
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        logits = model(ids).logits
    return logits, _pipeline_reply(model_dir, _messages(RECORDS[0]))


def test_lora_folder_loads_from_anywhere_after_the_run_moves(
    lora_run: Path, tmp_path: Path, monkeypatch
) -> None:
    from peft import AutoPeftModelForCausalLM, PeftModel

    model_dir = lora_run / "model"
    adapter = json.loads((model_dir / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(model_dir)
    assert {"config.json", "model.safetensors", "adapter_model.safetensors", "tokenizer.json"} <= {
        p.name for p in model_dir.iterdir()
    } and not (model_dir / "base").exists()
    ids = torch.tensor([[5, 40, 41, 42, 43, 44, 45, 46]])
    logits, reply = _state(model_dir, ids)
    in_place = AutoPeftModelForCausalLM.from_pretrained(model_dir).eval()  # peft's loader, in place
    assert sum(n.endswith("lora_A") for n, _ in in_place.named_modules()) == 4 * 7  # no adapter twice
    with torch.no_grad():
        assert torch.equal(in_place(ids).logits, logits)
    prompts = ["infer.prompts=[Reverse the order of the letters: n t a w]", "infer.max_new_tokens=6"]
    before = run_cli(["generate", f"infer.source={lora_run}", *prompts], tmp_path)
    assert before.returncode == 0, before.stderr[-2000:]

    moved = tmp_path / "elsewhere" / "lora"
    shutil.move(lora_run, moved)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    moved_logits, moved_reply = _state(moved / "model", ids)
    assert torch.equal(moved_logits, logits) and moved_reply == reply
    peft_model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(moved / "model"), moved / "model"
    )
    assert sum(n.endswith("lora_A") for n, _ in peft_model.named_modules()) == 4 * 7
    with torch.no_grad():
        assert torch.equal(peft_model.eval()(ids).logits, logits)
    # What generate/evaluate/merge load: the base from the folder, the adapter over it, once; merged, it
    # saves as a plain model.
    loaded = load_adapter(moved / "model").eval()
    assert sum(n.endswith("lora_A") for n, _ in loaded.named_modules()) == 4 * 7
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, logits)
    loaded.merge_and_unload().save_pretrained(tmp_path / "merged")  # merges in place
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")(ids).logits
        assert (merged - logits).abs().max() < 1e-4
    after = run_cli(["generate", f"infer.source={moved}", *prompts], elsewhere)
    assert after.returncode == 0, after.stderr[-2000:]
    assert after.stdout.replace(str(moved), str(lora_run)) == before.stdout


def test_card_of_an_adapter_on_a_named_base_passes_the_exported_tokenizer() -> None:
    """The pipeline would take the base's tokenizer (and its chat template) unless told otherwise."""
    from trainer.config.steps import StepCount
    from trainer.data.summary import DataSummary
    from trainer.training.model_card import CardFacts, render

    cfg = load_config(["model=qwen2_5_0_5b", "peft=lora"])
    tok = _training_tokenizer()
    facts = CardFacts(DataSummary({}, {}, 0, 0), StepCount(10, 5, 1), 10, {"val/loss": 1.23456}, 999)
    text = render(cfg, facts, prompt_format(cfg, tok), tok, Path("/m"), Loading(True, False))
    assert "Fine-tuned from the hub model `Qwen/Qwen2.5-0.5B`" in text
    assert 'pipeline("text-generation", model=model_dir, tokenizer=model_dir)' in text
    assert "PeftConfig.from_pretrained(model_dir).base_model_name_or_path" in text
    assert "| val loss | n/a | 1.2346 |" in text and "tokens seen: 999" in text
