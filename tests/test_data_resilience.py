"""Data that would quietly spoil a run: duplicates that leak validation into training, a record too large
to tokenize, a dataset that loses most of its records (issue 12, "Resilience")."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from transformers import AutoTokenizer

from tests.test_data import alpaca_file, data_cfg, rows_of
from trainer.assets import asset_path
from trainer.config.data import DataConfig
from trainer.config.dataset import AlpacaFormat, ChatFormat, InputOutputFormat
from trainer.data.duplicates import digests, keep_in_training
from trainer.data.encoded import TokenizedSet
from trainer.data.formats import encode_dataset
from trainer.data.formats.oversize import cut, longest_token_chars, text_chars
from trainer.data.prepare import encode_options, hold_out, prepare_data
from trainer.errors import UserError


@pytest.fixture(scope="module")
def tok() -> Any:
    return AutoTokenizer.from_pretrained(asset_path("tokenizer"))


def write(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records))
    return path


def records_of(n: int, tag: str = "a") -> list[dict]:
    return [{"instruction": f"Repeat {tag} {i}.", "input": "", "output": f"{tag} {i}"} for i in range(n)]


# --- duplicates --------------------------------------------------------------------------------------


def old_hold_out(sizes: list[int], n_val: int, seed: int) -> list[np.ndarray]:
    """The split as it was before duplicates were looked at: one seeded permutation, nothing else."""
    flat = np.zeros(sum(sizes), dtype=bool)
    flat[np.random.default_rng(seed).permutation(sum(sizes))[:n_val]] = True
    return list(np.split(flat, np.cumsum(sizes)[:-1]))


def test_without_duplicates_the_held_out_examples_are_exactly_the_old_choice(tmp_path: Path, tok) -> None:
    a, b = alpaca_file(tmp_path, 70, "a.json", "a"), alpaca_file(tmp_path, 30, "b.json", "b")
    datasets = {"a": {"path": str(a)}, "b": {"path": str(b)}}
    data = prepare_data(data_cfg(tmp_path / "c", datasets, val_count=17), tok, seed=7)
    expected = old_hold_out([70, 30], 17, seed=7)
    sets = {
        name: prepare_data(data_cfg(tmp_path / name, {name: ds}), tok, seed=7).examples
        for name, ds in datasets.items()
    }
    held = TokenizedSet.concat(
        [sets[n].select(np.flatnonzero(m)) for n, m in zip("ab", expected, strict=True)]
    )
    assert rows_of(data.val) == rows_of(held) and len(data.val) == 17
    assert data.summary.train["a"].duplicates == 0 and data.summary.train["a"].kept_in_training == 0
    # The mask itself, bitwise: the seeded choice with nothing given back.
    cfg = DataConfig(datasets={"x": {"path": "x.json"}}, val_count=17)
    masks = hold_out([70, 30], cfg, seed=7)
    kept = keep_in_training(masks, [digests(sets["a"]), digests(sets["b"])])
    for old, new, after in zip(expected, masks, kept, strict=True):
        assert old.dtype == new.dtype == after.dtype == bool
        assert old.tobytes() == new.tobytes() == after.tobytes()


def test_held_out_duplicates_of_training_examples_go_back_to_training(tmp_path: Path, tok, caplog) -> None:
    unique = records_of(30)
    path = write(tmp_path / "dup.json", unique + unique)  # every record twice: i and i + 30
    with caplog.at_level(logging.WARNING, logger="trainer"):
        data = prepare_data(data_cfg(tmp_path / "c", {"d": {"path": str(path)}}, val_count=20), tok, seed=3)
    chosen = np.flatnonzero(old_hold_out([60], 20, seed=3)[0]).tolist()
    twins_held = [i for i in chosen if (i + 30) % 60 in chosen]  # both copies held out: nothing leaks
    s = data.summary
    assert s.train["d"].duplicates == 30 and s.train["d"].kept_in_training == 20 - len(twins_held)
    assert len(data.val) == len(twins_held) > 0 and len(data.examples) == 60 - len(twins_held)
    assert not set(rows_of(data.val)) & set(rows_of(data.examples))
    rows = dict(s.rows())
    assert "duplicates: 30 exact duplicate examples in data.datasets.d" in [text for _, text in s.rows()]
    assert (
        f"training set {60 - len(twins_held)} examples ({len(twins_held)} held out for validation; "
        f"{20 - len(twins_held)} duplicates of training examples kept in training)"
    ) in [text for _, text in s.rows()]
    assert "warning" not in rows and not caplog.records
    metrics = s.metrics()
    assert metrics["data/duplicates"] == 30 and metrics["data/train/d/duplicates"] == 30
    assert metrics["data/val_kept_in_training"] == 20 - len(twins_held)
    again = prepare_data(data_cfg(tmp_path / "c", {"d": {"path": str(path)}}, val_count=20), tok, seed=3)
    assert again.summary.cache.startswith("hit") and again.summary.train == s.train  # counts are cached
    assert rows_of(again.val) == rows_of(data.val)


def test_nothing_left_to_validate_on_is_an_error(tmp_path: Path, tok) -> None:
    path = write(tmp_path / "same.json", records_of(1) * 12)
    with pytest.raises(
        UserError, match=r"data.val_count=3: every held-out example also occurs in the training"
    ):
        prepare_data(data_cfg(tmp_path / "c", {"d": {"path": str(path)}}, val_count=3), tok, seed=0)


def test_validation_examples_found_in_training_are_counted_and_warned(tmp_path: Path, tok, caplog) -> None:
    train = write(tmp_path / "t.json", records_of(20))
    val = write(tmp_path / "v.json", records_of(20)[5:8] + records_of(4, "v") + records_of(4, "v")[:1])
    cfg = data_cfg(tmp_path / "c", {"t": {"path": str(train)}}, validation={"v": {"path": str(val)}})
    with caplog.at_level(logging.WARNING, logger="trainer"):
        data = prepare_data(cfg, tok, seed=0)
    s = data.summary
    assert len(data.val) == 8 and s.val["v"].also_in_training == 3 and s.val["v"].duplicates == 1
    line = (
        "3 of the 8 examples in data.validation.v also occur in the training data (exact duplicates), "
        "so validation partly measures memorization"
    )
    assert ("warning", line) in s.rows() and [r.getMessage() for r in caplog.records] == [line]
    assert "duplicates: 1 exact duplicate examples in data.validation.v" in [text for _, text in s.rows()]
    assert s.metrics()["data/val_also_in_training"] == 3


# --- a record far beyond sequence_len ------------------------------------------------------------------


HUGE_CHARS = 20_000_000


@pytest.fixture(scope="module")
def counting() -> Any:
    """The built-in tokenizer, recording the longest text it is asked to tokenize."""
    base = type(AutoTokenizer.from_pretrained(asset_path("tokenizer")))

    class Counting(base):  # type: ignore[misc, valid-type]
        longest = 0

        def __call__(self, text: Any, *args: Any, **kw: Any) -> Any:
            texts = text if isinstance(text, list) else [text]
            Counting.longest = max([Counting.longest, *(len(t) for t in texts)])
            return super().__call__(text, *args, **kw)

    return Counting.from_pretrained(asset_path("tokenizer"))


def huge_file(tmp_path: Path) -> tuple[Path, Path]:
    """JSONL with four normal records around one of 20 MB of text; and the normal ones alone."""
    normal = records_of(4)
    huge = {"instruction": "Summarize.", "output": "word " * (HUGE_CHARS // 5)}
    with_huge = tmp_path / "huge.jsonl"
    with_huge.write_text("\n".join(json.dumps(r) for r in [*normal[:2], huge, *normal[2:]]))
    alone = tmp_path / "normal.jsonl"
    alone.write_text("\n".join(json.dumps(r) for r in normal))
    return with_huge, alone


def test_a_huge_record_is_dropped_by_its_characters_without_tokenizing(tmp_path: Path, counting) -> None:
    with_huge, alone = huge_file(tmp_path)
    counting.longest = 0
    cfg = data_cfg(tmp_path / "c", {"h": {"path": str(with_huge)}}, cache=False)
    data = prepare_data(cfg, counting, seed=0)
    assert type(counting).longest < 1_000  # never asked to tokenize the huge text
    s = data.summary.train["h"]
    assert (s.read, s.kept, s.dropped, s.truncated) == (5, 4, {"too_long": 1}, 0)
    reference = prepare_data(data_cfg(tmp_path / "c", {"n": {"path": str(alone)}}, cache=False), counting, 0)
    assert rows_of(data.examples) == rows_of(reference.examples)
    assert [list(e["labels"]) for e in data.examples] == [list(e["labels"]) for e in reference.examples]


def test_a_huge_record_is_cut_before_tokenizing_when_truncating(tmp_path: Path, counting) -> None:
    with_huge, _ = huge_file(tmp_path)
    counting.longest = 0
    cfg = data_cfg(tmp_path / "c", {"h": {"path": str(with_huge)}}, cache=False, too_long="truncate")
    data = prepare_data(cfg, counting, seed=0)
    per_token = longest_token_chars(counting)
    assert type(counting).longest == (256 + 64) * per_token  # the output field, cut
    s = data.summary.train["h"]
    assert (s.read, s.truncated, s.dropped) == (5, 1, {})
    # What is kept is what truncating the whole text would give: the prompt, then "word word ...".
    cut_example = data.examples[2]
    full = counting("word " * 400, add_special_tokens=False)["input_ids"]
    prompt_len = int((cut_example["labels"] == -100).sum())
    assert len(cut_example["input_ids"]) == 256
    assert cut_example["input_ids"][prompt_len:].tolist() == full[: 256 - prompt_len]


def test_a_huge_record_with_too_long_error_is_named_untokenized(tmp_path: Path, counting) -> None:
    with_huge, _ = huge_file(tmp_path)
    cfg = data_cfg(tmp_path / "c", {"h": {"path": str(with_huge)}}, cache=False, too_long="error")
    with pytest.raises(
        UserError, match=r"data.datasets.h: example 2 has 20,000,009 characters of text, more "
    ):
        prepare_data(cfg, counting, seed=0)


def test_records_after_a_huge_one_keep_their_index(tok) -> None:
    opts = encode_options(DataConfig(datasets={"x": {"path": "x"}}, sequence_len=16), tok)
    records = [*records_of(2), {"instruction": "x" * 10_000, "output": "y"}, {"instruction": "a"}]
    with pytest.raises(UserError, match=r"data.demo: example 3 has no text field 'output'"):
        encode_dataset(records, AlpacaFormat(), tok, opts, "data.demo")


def test_longest_token_and_what_is_measured(tok) -> None:
    assert longest_token_chars(tok) == len(" alphabetically") + 1  # the longest piece, one spare
    alpaca = {"instruction": " ab ", "input": "c", "output": "de", "system": None, "other": "zzzz"}
    assert text_chars(alpaca, AlpacaFormat()) == 5
    chat = {
        "messages": [{"role": "user", "content": "abc"}, {"role": "assistant", "content": [{"text": "de"}]}]
    }
    assert text_chars(chat, ChatFormat()) == 5
    sharegpt = {
        "conversations": [{"from": "human", "value": "abc"}, {"from": "function_call", "value": "{}"}]
    }
    assert text_chars(sharegpt, ChatFormat(field="conversations")) == 3
    segments = {"segments": [{"text": "abc", "label": False}, {"text": "de", "label": True}]}
    assert text_chars(segments, InputOutputFormat()) == 5
    assert text_chars("not a record", AlpacaFormat()) == 0
    assert cut(chat, ChatFormat(), 2)["messages"][0] == {"role": "user", "content": "ab"}
    assert cut(segments, InputOutputFormat(), 1)["segments"][1] == {"text": "d", "label": True}
    assert cut(alpaca, AlpacaFormat(), 1) == {**alpaca, "instruction": " ", "output": "d"}


# --- datasets that lose most of their records ----------------------------------------------------------


def mostly_long(tmp_path: Path, n: int, long: int) -> Path:
    records = records_of(n - long) + [{"instruction": "x " * 300, "output": "y"}] * long
    return write(tmp_path / "m.json", records)


def test_a_dataset_that_drops_more_than_half_warns(tmp_path: Path, tok, caplog) -> None:
    path = mostly_long(tmp_path, 10, 6)
    with caplog.at_level(logging.WARNING, logger="trainer"):
        data = prepare_data(data_cfg(tmp_path / "c", {"m": {"path": str(path)}}), tok, seed=0)
    assert len(data.examples) == 4
    assert [r.getMessage() for r in caplog.records] == [
        "data.datasets.m: 6 of 10 records dropped (60%: 6 longer than data.sequence_len), 4 examples kept; "
        "check data.sequence_len and the format"
    ]


def test_a_dataset_that_drops_nearly_everything_is_refused(tmp_path: Path, tok, caplog) -> None:
    path = mostly_long(tmp_path, 20, 19)
    cfg = data_cfg(tmp_path / "c", {"m": {"path": str(path)}})
    with pytest.raises(UserError) as err:
        prepare_data(cfg, tok, seed=0)
    assert err.value.message == (
        "data.datasets.m: 19 of 20 records dropped (95%: 19 longer than data.sequence_len), 1 examples kept; "
        "more than data.max_dropped_fraction=0.9"
    )
    assert "data.too_long=truncate" in err.value.hint and "data.max_dropped_fraction=1.0" in err.value.hint
    with caplog.at_level(logging.WARNING, logger="trainer"):
        data = prepare_data(cfg.model_copy(update={"max_dropped_fraction": 1.0}), tok, seed=0)
    assert len(data.examples) == 1 and data.summary.cache.startswith("hit")  # refused data is cached
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [err.value.message.split(";")[0]]
    with pytest.raises(UserError, match="more than data.max_dropped_fraction=0.9"):
        prepare_data(cfg, tok, seed=0)  # a cache hit is checked too
