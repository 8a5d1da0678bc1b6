"""Prompt rendering, label masks token by token, sources' error messages, batching, the built-in data."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from trainer.assets import asset_path
from trainer.config.data import DataConfig
from trainer.data.alpaca import IGNORE, encode, render_prompt
from trainer.data.datamodule import Collator
from trainer.data.prepare import split_records
from trainer.data.sources import load_records
from trainer.errors import UserError
from trainer.hub import looks_local

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(asset_path("tokenizer"))


RECORD = {"instruction": "Add the two numbers.", "input": "2 + 3", "output": "5"}


def test_prompt_styles() -> None:
    short = render_prompt(RECORD, "alpaca_short")
    assert short == "### Instruction:\nAdd the two numbers.\n\n### Input:\n2 + 3\n\n### Response:\n"
    full = render_prompt(RECORD, "alpaca")
    assert full.startswith(
        "Below is an instruction that describes a task, paired with an input"
    ) and full.endswith(short)
    no_input = render_prompt({"instruction": "Say hi.", "output": "hi"}, "alpaca")
    assert "### Input" not in no_input and no_input.startswith(
        "Below is an instruction that describes a task. "
    )


def _encode(tok, records, **kw):
    opts = dict(
        key="data.path", prompt_style="alpaca_short", sequence_len=128, train_on_inputs=False, too_long="drop"
    )
    return encode(records, tok, **{**opts, **kw})


def test_labels_train_on_response_and_eos_only(tok) -> None:
    (ex,), stats = _encode(tok, [RECORD])
    prompt_ids = tok(render_prompt(RECORD, "alpaca_short"))["input_ids"]
    response_ids = tok("5", add_special_tokens=False)["input_ids"]
    assert ex["input_ids"] == prompt_ids + response_ids + [tok.eos_token_id]
    assert ex["labels"] == [IGNORE] * len(prompt_ids) + response_ids + [tok.eos_token_id]
    assert stats.trained_tokens == len(response_ids) + 1 and stats.kept == 1


def test_train_on_inputs_trains_every_token(tok) -> None:
    (ex,), _ = _encode(tok, [RECORD], train_on_inputs=True)
    assert ex["labels"] == ex["input_ids"]


def test_too_long_policies(tok) -> None:
    long = {**RECORD, "output": "a b c d e f g h i j k l m n o p q r s t u v w x y z"}
    kept, stats = _encode(tok, [RECORD, long], sequence_len=30)
    assert len(kept) == 1 and stats.dropped_too_long == 1 and stats.read == 2
    kept, stats = _encode(tok, [long], sequence_len=30, too_long="truncate")
    assert len(kept[0]["input_ids"]) == 30 and stats.truncated == 1
    with pytest.raises(UserError, match=r"example 1 has \d+ tokens, more than data.sequence_len=30"):
        _encode(tok, [RECORD, long], sequence_len=30, too_long="error")


def test_everything_dropped_is_an_error(tok) -> None:
    with pytest.raises(UserError, match="no example is left after filtering"):
        _encode(tok, [RECORD], sequence_len=5)


def test_missing_field_names_field_and_index(tok) -> None:
    with pytest.raises(UserError, match=r"example 1 has no text field 'output' \(missing\)"):
        _encode(tok, [RECORD, {"instruction": "x"}])


def test_json_lines_error_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps(RECORD) + "\n" + '{"instruction": "x", \n')
    with pytest.raises(UserError, match=rf"data.path={f}:2: invalid JSON"):
        load_records(str(f), key="data.path")


def test_json_error_names_line(tmp_path: Path) -> None:
    f = tmp_path / "d.json"
    f.write_text('[\n{"instruction": "a", "output": "b"},\n{"instruction": }\n]')
    with pytest.raises(UserError, match=rf"{f}:3: invalid JSON"):
        load_records(str(f), key="data.path")


def test_non_utf8_missing_and_empty_files(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.json"
    bad.write_bytes('[{"instruction": "caf\xe9"}]'.encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8 text"):
        load_records(str(bad), key="data.path")
    with pytest.raises(UserError, match="file not found"):
        load_records(str(tmp_path / "nope.json"), key="data.path")
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    with pytest.raises(UserError, match="holds no examples"):
        load_records(str(empty), key="data.path")


def test_unreachable_hub_dataset_fails_fast_and_says_how_to_use_a_local_file(monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    started = time.perf_counter()
    with pytest.raises(UserError) as info:
        load_records("tatsu-lab/alpaca", key="data.path")
    assert time.perf_counter() - started < 5
    assert (
        "data.path=tatsu-lab/alpaca: not a local path, and the Hugging Face hub (127.0.0.1)"
        in info.value.message
    )
    assert "data.path=/path/to/data.json" in (info.value.hint or "")


def test_hub_ids_and_paths_are_told_apart(tmp_path: Path) -> None:
    assert not looks_local("tatsu-lab/alpaca") and not looks_local("alpaca")
    assert not looks_local("meta-llama/Llama-3.2-1B")
    assert looks_local("data/train.json") and looks_local("./x") and looks_local(str(tmp_path))


def test_collator_pads_right_and_masks_padding() -> None:
    batch = Collator(pad_id=0)(
        [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]


def test_validation_split_is_deterministic_and_disjoint() -> None:
    records = [{"i": i} for i in range(100)]
    cfg = DataConfig(path="x.json", val_count=10)
    train, val = split_records(records, cfg, seed=3)
    assert len(val) == 10 and len(train) == 90 and not {r["i"] for r in val} & {r["i"] for r in train}
    assert split_records(records, cfg, seed=3) == (train, val)
    assert split_records(records, cfg, seed=4)[1] != val


def test_holding_out_everything_is_an_error() -> None:
    with pytest.raises(UserError, match=r"data.val_count=200 holds out 200 of the 5 examples"):
        split_records([{"i": i} for i in range(5)], DataConfig(path="x.json", val_count=200), seed=0)


def test_builtin_data_is_what_the_committed_script_generates() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_tiny_tasks", ROOT / "scripts" / "make_tiny_tasks.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    val = json.loads(Path(asset_path("data/tiny_tasks/validation.json")).read_text())
    train = json.loads(Path(asset_path("data/tiny_tasks/train.json")).read_text())
    assert val == gen.generate(240, seed=1)
    assert train == gen.generate(6000, seed=2, exclude={(r["instruction"], r["input"]) for r in val})


def test_builtin_answers_are_right() -> None:
    answers = {
        "reverse": lambda xs, _: " ".join(reversed(xs)),
        "sort": lambda xs, _: " ".join(sorted(xs)),
        "uppercase": lambda xs, _: " ".join(x.upper() for x in xs),
        "count": lambda xs, _: str(len(xs)),
        "add": lambda xs, _: str(int(xs[0]) + int(xs[2])),
        "first_last": lambda xs, instruction: xs[0] if "first" in instruction else xs[-1],
    }
    for r in json.loads(Path(asset_path("data/tiny_tasks/validation.json")).read_text()):
        assert r["output"] == answers[r["task"]](r["input"].split(), r["instruction"]), r


def test_builtin_tokenizer_round_trips_and_splits_digits(tok) -> None:
    text = "### Response:\nr l q x m u 47 + 12 = 59 Hello, world!"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert [tok.decode([i]) for i in tok(" 59", add_special_tokens=False)["input_ids"]] == [" ", "5", "9"]
