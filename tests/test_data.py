"""The data pipeline: mix, hold-out, sizes, the content-keyed cache, packing through the loaders, the
counts of what was kept and dropped, `trainer.preprocess`, and the built-in data and tokenizer.

Formats and masks are tested in test_formats.py, file readers in test_sources.py, bin packing and
attention isolation in test_packing.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from tests.conftest import run_cli
from trainer.assets import asset_path
from trainer.config.data import DataConfig
from trainer.config.paths import looks_local
from trainer.data.collate import Collator
from trainer.data.prepare import hold_out, prepare_data
from trainer.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(asset_path("tokenizer"))


def alpaca_file(folder: Path, n: int, name: str = "a.json", tag: str = "a") -> Path:
    records = [
        {"instruction": f"Repeat {tag} {i}.", "input": "", "output": " ".join([tag] * (1 + i % 5))}
        for i in range(n)
    ]
    path = folder / name
    path.write_text(json.dumps(records))
    return path


def chat_file(folder: Path, n: int) -> Path:
    path = folder / "chat.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"hi {i}"}, {"role": "assistant", "content": f"hello {i}"}]}
        for i in range(n)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def data_cfg(cache_dir: Path, datasets: dict[str, Any], **kw: Any) -> DataConfig:
    kw.setdefault("sequence_len", 256)
    return DataConfig(datasets=datasets, cache_dir=str(cache_dir), **kw)


def rows_of(ts: Any) -> list[tuple[int, ...]]:
    return [tuple(ts[i]["input_ids"].tolist()) for i in range(len(ts))]


def test_two_formats_mixed_with_counts_and_weights(tmp_path: Path, tok) -> None:
    a, c = alpaca_file(tmp_path, 40), chat_file(tmp_path, 10)
    datasets = {
        "alpaca": {"path": str(a), "format": {"type": "alpaca", "template": "alpaca_short"}, "count": 25},
        "chat": {"path": str(c), "format": {"type": "chat"}, "weight": 2},
    }
    data = prepare_data(data_cfg(tmp_path / "cache", datasets), tok, seed=0)
    s = data.summary
    assert s.mixed == {"alpaca": 25, "chat": 20} and len(data.examples) == 45 == s.train_examples
    assert s.train["alpaca"].read == 40 and s.train["chat"].read == 10
    rows = rows_of(data.examples)
    chat_rows = rows[25:]
    assert all(chat_rows.count(r) == 2 for r in chat_rows)  # weight 2: every chat example twice
    assert len(set(rows[:25])) == 25  # count below the size: a sample without repeats
    again = prepare_data(data_cfg(tmp_path / "other-cache", datasets), tok, seed=0)
    assert rows_of(again.examples) == rows  # same seed, same mix
    other = prepare_data(data_cfg(tmp_path / "cache3", datasets), tok, seed=1)
    assert rows_of(other.examples) != rows


def test_validation_is_held_out_before_upsampling(tmp_path: Path, tok) -> None:
    a = alpaca_file(tmp_path, 60)
    datasets = {"a": {"path": str(a), "format": {"type": "alpaca"}, "weight": 3}}
    data = prepare_data(data_cfg(tmp_path / "c", datasets, val_count=12), tok, seed=5)
    assert len(data.val) == 12 and len(data.examples) == 3 * 48
    assert not set(rows_of(data.val)) & set(rows_of(data.examples))
    assert data.summary.val == {}  # held out, not a separate dataset


def test_hold_out_is_seeded_and_spans_datasets() -> None:
    cfg = DataConfig(datasets={"x": {"path": "x.json"}}, val_count=10)
    masks = hold_out([30, 70], cfg, seed=3)
    assert sum(int(m.sum()) for m in masks) == 10 and [len(m) for m in masks] == [30, 70]
    assert all((a == b).all() for a, b in zip(masks, hold_out([30, 70], cfg, seed=3), strict=True))
    assert any((a != b).any() for a, b in zip(masks, hold_out([30, 70], cfg, seed=4), strict=True))
    with pytest.raises(UserError, match=r"data.val_count=200 holds out 200 of the 5 training examples"):
        hold_out([5], DataConfig(datasets={"x": {"path": "x.json"}}, val_count=200), seed=0)


def test_separate_validation_datasets_and_drop_counts(tmp_path: Path, tok) -> None:
    a = alpaca_file(tmp_path, 30)
    long = tmp_path / "long.json"
    long.write_text(
        json.dumps([{"instruction": "x " * 200, "output": "y"}, {"instruction": "q", "output": "r"}])
    )
    cfg = data_cfg(
        tmp_path / "c",
        {"a": {"path": str(a)}, "long": {"path": str(long)}},
        validation={"v": {"path": str(alpaca_file(tmp_path, 7, "v.json", "v"))}},
    )
    data = prepare_data(cfg, tok, seed=0)
    s = data.summary
    assert (
        s.train["long"].read == 2 and s.train["long"].kept == 1 and s.train["long"].dropped == {"too_long": 1}
    )
    assert s.train_total.dropped_total == 1 and s.train_total.read == 32
    assert len(data.val) == 7 and s.val["v"].kept == 7


def test_a_dataset_with_nothing_left_is_an_error(tmp_path: Path, tok) -> None:
    long = tmp_path / "long.json"
    long.write_text(json.dumps([{"instruction": "x " * 200, "output": "y"}]))
    with pytest.raises(
        UserError,
        match=r"data.datasets.long: no example is left after encoding \(1 read; "
        r"dropped: 1 longer than data.sequence_len\)",
    ):
        prepare_data(data_cfg(tmp_path / "c", {"long": {"path": str(long)}}), tok, seed=0)


def test_malformed_line_fails_with_file_and_line_before_training(tmp_path: Path, tok) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "a" "output": "b"}\n')
    with pytest.raises(UserError, match=rf"data.datasets.bad.path={bad}:2: invalid JSON"):
        prepare_data(data_cfg(tmp_path / "c", {"bad": {"path": str(bad)}}), tok, seed=0)


# --- the cache -----------------------------------------------------------------------------------------


def _prepared(tmp_path: Path, tok, path: Path, **kw: Any):
    fmt = kw.pop("format", {"type": "alpaca", "template": "alpaca_short"})
    seed = kw.pop("seed", 0)
    cfg = data_cfg(tmp_path / "cache", {"a": {"path": str(path), "format": fmt}}, **kw)
    return prepare_data(cfg, tok, seed=seed)


def test_cache_hit_gives_the_same_data_and_any_input_change_rebuilds(tmp_path: Path, tok) -> None:
    path = alpaca_file(tmp_path, 50)
    first = _prepared(tmp_path, tok, path)
    assert first.summary.cache.startswith("built ")
    second = _prepared(tmp_path, tok, path)
    assert second.summary.cache == "hit " + first.summary.cache.removeprefix("built ")
    assert rows_of(second.examples) == rows_of(first.examples)
    assert second.summary.train["a"] == first.summary.train["a"]  # counts come back with the data
    # Not in the key: batch sizes, packing, the seed when nothing is split or sampled, the file's location.
    assert _prepared(tmp_path, tok, path, micro_batch=4, global_batch=8).summary.cache.startswith("hit")
    assert _prepared(tmp_path, tok, path, packing=True).summary.cache.startswith("hit")
    assert _prepared(tmp_path, tok, path, seed=9).summary.cache.startswith("hit")
    moved = tmp_path / "moved"
    moved.mkdir()
    assert _prepared(tmp_path, tok, Path(shutil.copy(path, moved))).summary.cache.startswith("hit")
    # In the key: everything that changes the tokens.
    changes = [
        {"sequence_len": 200},
        {"too_long": "truncate"},
        {"train_on_inputs": True},
        {"format": {"type": "alpaca", "template": "alpaca"}},
        {"chat_template": "chatml"},
        {"val_count": 5},
        {"val_count": 5, "seed": 1},
    ]
    for change in changes:
        assert _prepared(tmp_path, tok, path, **change).summary.cache.startswith("built"), change
    records = json.loads(path.read_text())
    records[3]["output"] += "!"
    path.write_text(json.dumps(records))
    assert _prepared(tmp_path, tok, path).summary.cache.startswith("built")  # one changed byte


def test_cache_key_follows_the_tokenizer(tmp_path: Path, tok) -> None:
    path = alpaca_file(tmp_path, 20)
    assert _prepared(tmp_path, tok, path).summary.cache.startswith("built")
    other = AutoTokenizer.from_pretrained(asset_path("tokenizer"))
    assert _prepared(tmp_path, other, path).summary.cache.startswith("hit")  # same content, new object
    other.add_tokens(["<extra>"])
    assert _prepared(tmp_path, other, path).summary.cache.startswith("built")


def test_damaged_cache_entry_is_rebuilt_and_dry_runs_write_nothing(tmp_path: Path, tok) -> None:
    path = alpaca_file(tmp_path, 20)
    cfg = data_cfg(tmp_path / "cache", {"a": {"path": str(path)}})
    dry = prepare_data(cfg, tok, seed=0, write_cache=False)
    assert dry.summary.cache.startswith("miss") and not (tmp_path / "cache").exists()
    built = prepare_data(cfg, tok, seed=0)
    folder = Path(built.summary.cache.removeprefix("built "))
    (folder / "meta.json").write_text("{not json")
    again = prepare_data(cfg, tok, seed=0)
    assert again.summary.cache.startswith("built") and rows_of(again.examples) == rows_of(built.examples)
    assert prepare_data(cfg, tok, seed=0).summary.cache == f"hit {folder}"  # the entry was replaced


def test_tokenizer_key_reads_only_tokenizer_files(tmp_path: Path, tok) -> None:
    from trainer.data.cache import tokenizer_fingerprint

    folder = tmp_path / "model"
    tok.save_pretrained(folder)
    loaded = AutoTokenizer.from_pretrained(folder)
    before = tokenizer_fingerprint(loaded)
    (folder / "model.safetensors").write_bytes(b"weights that must not be read")
    assert tokenizer_fingerprint(loaded) == before
    (folder / "tokenizer_config.json").write_text((folder / "tokenizer_config.json").read_text() + " ")
    assert tokenizer_fingerprint(loaded) != before


def test_encoding_in_worker_processes_equals_one_process(tmp_path: Path, tok) -> None:
    path = alpaca_file(tmp_path, 64)
    one = prepare_data(data_cfg(tmp_path / "c1", {"a": {"path": str(path)}}, num_proc=1), tok, seed=0)
    two = prepare_data(data_cfg(tmp_path / "c2", {"a": {"path": str(path)}}, num_proc=2), tok, seed=0)
    assert rows_of(one.examples) == rows_of(two.examples) and one.summary.train == two.summary.train


def test_worker_errors_keep_the_example_index(tmp_path: Path, tok) -> None:
    records = (
        [{"instruction": "a", "output": "b"}] * 50
        + [{"instruction": "a"}]
        + [{"instruction": "a", "output": "b"}] * 9
    )
    path = tmp_path / "m.json"
    path.write_text(json.dumps(records))
    with pytest.raises(UserError, match=r"data.datasets.a: example 50 has no text field 'output'"):
        prepare_data(data_cfg(tmp_path / "c", {"a": {"path": str(path)}}, num_proc=2), tok, seed=0)


# --- packing through the loaders --------------------------------------------------------------------


def test_packed_training_rows_and_steps(tmp_path: Path, tok) -> None:
    from tests.conftest import load_config
    from trainer.config.steps import count_steps
    from trainer.data.datamodule import InstructionDataModule

    cfg = load_config(
        [
            "data.packing=true",
            "data.micro_batch=4",
            "data.global_batch=8",
            "data.datasets.tiny_tasks.count=400",
            f"data.cache_dir={tmp_path}",
        ]
    )
    dm = InstructionDataModule(cfg.data, tok, cfg.run.seed)
    prepared = dm.prepare()
    summary, rows = prepared.summary, prepared.packed
    assert rows is not None and prepared.train_items is rows
    assert summary.packed_rows == len(rows) < 400 and summary.packing_efficiency > 0.9
    real = sum(len(prepared.examples[i]["input_ids"]) for i in range(400))
    assert real == rows.real_tokens
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"input_ids", "labels", "position_ids", "real_tokens"}
    assert batch["input_ids"].shape[0] == 4 and batch["input_ids"].shape[1] <= cfg.data.sequence_len
    assert (batch["position_ids"][:, 0] == 0).all()
    steps = count_steps(cfg, len(prepared.train_items))
    assert steps.per_epoch == -(-(len(rows) // 4) // 2)
    val = next(iter(dm.val_dataloader()))
    assert "attention_mask" in val  # validation stays unpacked: exact match is per example
    assert int(val["real_tokens"]) == int(val["attention_mask"].sum())  # every batch counts its tokens


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


@pytest.mark.slow
def test_preprocess_builds_the_cache_prints_counts_and_debug_view(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = ["data.datasets.tiny_tasks.count=300", f"data.cache_dir={cache}", "--debug", "1", "--plain"]
    first = run_cli(["preprocess", *args], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "train tiny_tasks: 6,000 kept of 6,000 read" in out and "dropped: none" in out
    assert "training set 300 examples" in out and f"built {cache}" in out
    # The debug view: the prompt is masked («...»), the response and EOS are trained.
    assert "«### Instruction:" in out and "»" in out and "</s>" in out
    assert not (tmp_path / "outputs").exists()  # no run folder
    second = run_cli(["preprocess", *args[:2]], cwd=tmp_path)
    assert second.returncode == 0 and f"hit {cache}" in second.stdout
    bad = run_cli(["preprocess", "--debug", "x"], cwd=tmp_path)
    assert bad.returncode == 2 and "--debug needs a number of examples, got 'x'" in bad.stderr


def test_nothing_left_for_another_reason_points_at_the_format(tmp_path: Path, tok) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps([{"text": "  "}]))
    cfg = data_cfg(tmp_path / "c", {"e": {"path": str(empty), "format": {"type": "completion"}}})
    with pytest.raises(UserError, match=r"dropped: 1 empty text") as info:
        prepare_data(cfg, tok, seed=0)
    assert (
        info.value.hint == "check that data.datasets.e.format matches the records (its type and field names)"
    )


def test_debug_view_prints_data_that_looks_like_markup(tmp_path: Path, capsys) -> None:
    from tests.conftest import invocation
    from trainer.commands.preprocess import preprocess

    data = tmp_path / "inst.json"
    data.write_text(json.dumps([{"instruction": "[INST] hi [/INST] [bold]", "output": "ok"}] * 4))
    inv = invocation(
        [
            f"data.datasets.tiny_tasks.path={data}",
            "data.validation=null",
            f"data.cache_dir={tmp_path}",
            "trainer.val_every=disable",
            "trainer.val_at_start=false",
        ]
    )
    preprocess(inv, debug=1, color=True)  # colours on: rich must not read the text as markup
    assert "[INST] hi [/INST] [bold]" in capsys.readouterr().out
