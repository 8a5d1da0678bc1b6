"""Data sources: every file type, folders, save_to_disk datasets, the error messages, fingerprints."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trainer.config.dataset import DatasetConfig
from trainer.data.sources import fingerprint, load_records
from trainer.errors import UserError

KEY = "data.datasets.demo"
ROWS = [
    {"instruction": "add", "input": "1, 2", "output": "3"},
    {"instruction": "hi", "input": "", "output": "ho"},
]


def _load(path: Path | str, **options: str) -> list[dict]:
    return load_records(DatasetConfig(path=str(path), **options), KEY)


def _error(path: Path | str, **options: str) -> UserError:
    with pytest.raises(UserError) as info:
        _load(path, **options)
    assert "\n" not in info.value.message and info.value.hint  # one line, and says how to fix it
    return info.value


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# --- each file type -----------------------------------------------------------------------------------


def test_json_file(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    f.write_text(json.dumps(ROWS, indent=2))
    assert _load(f) == ROWS


def test_jsonl_skips_blank_lines_and_keeps_line_separators_inside_strings(tmp_path: Path) -> None:
    rows = [*ROWS, {"instruction": "para\u2028graph\x1c", "output": "x"}]
    f = _jsonl(tmp_path / "a.jsonl", rows)
    f.write_text(f.read_text() + "\n  \n", encoding="utf-8")
    assert _load(f) == rows


def test_parquet_file(tmp_path: Path) -> None:
    f = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist([{"input_ids": [1, 2, 3], "n": 7}]), f)
    assert _load(f) == [{"input_ids": [1, 2, 3], "n": 7}]


def test_csv_values_are_strings_with_quoting_newlines_and_a_byte_order_mark(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    limit = csv.field_size_limit()
    with f.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerows([["instruction", "input", "output", "n"], ["add", "1, 2", "3", 3]])
        writer.writerows([["two\nlines", "", "ok", "x" * 200_000]])  # over csv's default 128 KiB field cap
    assert _load(f) == [
        {"instruction": "add", "input": "1, 2", "output": "3", "n": "3"},
        {"instruction": "two\nlines", "input": "", "output": "ok", "n": "x" * 200_000},
    ]
    assert csv.field_size_limit() == limit  # the process-wide cap is put back


def test_text_file_is_one_document(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("line one\nline two\n")
    assert _load(f) == [{"text": "line one\nline two\n"}]
    # A completion format that reads another field gets the document there.
    body = DatasetConfig(path=str(f), format={"type": "completion", "field": "body"})
    assert load_records(body, "data.datasets.t") == [{"body": "line one\nline two\n"}]


def test_save_to_disk_dataset(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    assert _load(tmp_path / "saved") == ROWS


def test_save_to_disk_dataset_dict_picks_the_split(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    splits = {"train": datasets.Dataset.from_list(ROWS[:1]), "test": datasets.Dataset.from_list(ROWS[1:])}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "saved"))
    assert _load(tmp_path / "saved") == ROWS[:1]
    assert _load(tmp_path / "saved", split="test") == ROWS[1:]


def test_folder_concatenates_data_files_by_relative_path_skipping_others(
    tmp_path: Path,
) -> None:
    _jsonl(tmp_path / "b.jsonl", [{"n": "b"}])
    (tmp_path / "a.json").write_text(json.dumps([{"n": "a1"}, {"n": "a2"}]))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.csv").write_text("n\nc\n")
    (tmp_path / "doc.txt").write_text("a whole document")
    (tmp_path / "README.md").write_text("not data")
    _jsonl(tmp_path / ".hidden.jsonl", [{"n": "hidden"}])
    _jsonl(tmp_path / ".cache" / "x.jsonl", [{"n": "hidden folder"}])
    assert _load(tmp_path) == [{"n": "a1"}, {"n": "a2"}, {"n": "b"}, {"text": "a whole document"}, {"n": "c"}]


def test_folder_with_file_type_reads_only_that_type(tmp_path: Path) -> None:
    _jsonl(tmp_path / "a.jsonl", [{"n": "a"}])
    (tmp_path / "b.json").write_text(json.dumps([{"n": "b"}]))
    (tmp_path / "c.txt").write_text("c")
    assert _load(tmp_path, file_type="jsonl") == [{"n": "a"}]
    assert _load(tmp_path, file_type="text") == [{"text": "c"}]


def test_file_type_overrides_the_extension(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "export.data", ROWS)
    assert _load(f, file_type="jsonl") == ROWS


def test_reading_the_demo_data() -> None:
    """Real public data reads whole (its speed: benchmarks/data_pipeline.py)."""
    demo = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca_en_demo.json"
    if not demo.exists():
        pytest.skip(f"{demo} is not here")
    records = _load(demo)
    assert len(records) > 900 and all({"instruction", "output"} <= set(r) for r in records)


# --- errors: one line naming key, path (and line), with a hint ------------------------------------------


def test_malformed_json_line_names_file_and_line(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "a.jsonl", ROWS)
    f.write_text(f.read_text() + '{"instruction": "x" "output": "y"}\n')
    assert _error(f).message == f"{KEY}.path={f}:3: invalid JSON (Expecting ',' delimiter)"


def test_json_file_errors(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    f.write_text('[\n{"instruction": "a"},\n{"instruction": }\n]')
    assert _error(f).message == f"{KEY}.path={f}:3: invalid JSON (Expecting value)"
    f.write_text(json.dumps({"rows": ROWS}))
    assert _error(f).message == f"{KEY}.path={f}: expected a JSON list of objects, found an object"
    f.write_text(json.dumps([ROWS[0], "oops"]))
    message = _error(f).message
    assert message == f"{KEY}.path={f}: expected a JSON list of objects, the item at index 1 is a string"


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_text(json.dumps(ROWS[0]) + "\n[1, 2]\n")
    assert _error(f).message == f"{KEY}.path={f}:2: expected a JSON object per line, found a list"


def test_csv_row_with_wrong_field_count_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text("instruction,output\na,b\nc,d,e\n")
    assert _error(f).message == f"{KEY}.path={f}:3: 3 fields, the header has 2"
    f.write_text("instruction,output\na,b\n\nc\n")
    assert _error(f).message == f"{KEY}.path={f}:4: 1 fields, the header has 2"


def test_non_utf8_names_the_byte(tmp_path: Path) -> None:
    for suffix in (".json", ".jsonl", ".csv", ".txt"):
        f = tmp_path / f"latin1{suffix}"
        f.write_bytes('[{"a": "caf\xe9"}]'.encode("latin-1"))
        error = _error(f)
        assert error.message == f"{KEY}.path={f}: not UTF-8 text (byte 11)"
        assert "UTF-8" in (error.hint or "")
    # The byte is counted in the file, byte order mark included.
    f.write_bytes(b"\xef\xbb\xbf" + "caf\xe9".encode("latin-1"))
    assert _error(f).message == f"{KEY}.path={f}: not UTF-8 text (byte 6)"


def test_missing_file(tmp_path: Path) -> None:
    assert _error(tmp_path / "nope.json").message == f"{KEY}.path={tmp_path / 'nope.json'}: file not found"


def test_unknown_extension_lists_the_supported_ones_and_file_type(tmp_path: Path) -> None:
    f = tmp_path / "a.xml"
    f.write_text("<a/>")
    error = _error(f)
    assert error.message == (
        f"{KEY}.path={f}: cannot tell how to read '.xml' files (supported: .json .jsonl .parquet .csv .txt)"
    )
    assert f"{KEY}.file_type=" in (error.hint or "")


def test_folder_without_data_files(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not data")
    _jsonl(tmp_path / ".git" / "x.jsonl", ROWS)
    assert _error(tmp_path).message.startswith(f"{KEY}.path={tmp_path}: no data files in this folder")
    (tmp_path / "a.json").write_text(json.dumps(ROWS))
    assert "(looked for .csv (file_type=csv)" in _error(tmp_path, file_type="csv").message


@pytest.mark.parametrize(
    ("name", "content"),
    [("a.json", "[]"), ("a.jsonl", "\n\n"), ("a.csv", "instruction,output\n"), ("a.txt", "")],
)
def test_empty_file_holds_no_examples(tmp_path: Path, name: str, content: str) -> None:
    f = tmp_path / name
    f.write_text(content)
    assert _error(f).message == f"{KEY}.path={f}: holds no examples"


def test_corrupt_parquet(tmp_path: Path) -> None:
    f = tmp_path / "a.parquet"
    f.write_bytes(b"PAR1 this is not really parquet")
    assert _error(f).message.startswith(f"{KEY}.path={f}: not a readable Parquet file (")


def test_unknown_dataset_dict_split_lists_the_splits(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(ROWS), "test": datasets.Dataset.from_list(ROWS)}
    )
    dd.save_to_disk(str(tmp_path / "saved"))
    error = _error(tmp_path / "saved", split="validation")
    assert error.message == (
        f"{KEY}.path={tmp_path / 'saved'}: "
        "the saved DatasetDict has no split 'validation' (it has: train, test)"
    )
    assert f"{KEY}.split=train" in (error.hint or "")


def test_hub_dataset_offline_fails_with_a_local_file_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    # datasets reads these when it is imported, which another test may already have done.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for call in (load_records, fingerprint):
        with pytest.raises(UserError) as info:
            call(DatasetConfig(path="trainer-tests/no-such-dataset"), KEY)
        assert info.value.message.startswith(
            f"{KEY}.path=trainer-tests/no-such-dataset: could not load this hub dataset ("
        )
        assert f"{KEY}.path=/path/to/data.json" in (info.value.hint or "")


def test_unreachable_hub_is_reported_by_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-connect probe answers (not the libraries' retries): its message names the host."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    error = _error("trainer-tests/no-such-dataset")
    assert "not a local path, and the Hugging Face hub (127.0.0.1) cannot be reached" in error.message


# --- fingerprints ---------------------------------------------------------------------------------------


def _fp(path: Path, **options: str) -> str:
    return fingerprint(DatasetConfig(path=str(path), **options), KEY)


def test_fingerprint_ignores_location_and_modification_time(tmp_path: Path) -> None:
    a = _jsonl(tmp_path / "one" / "data" / "a.jsonl", ROWS)
    (tmp_path / "one" / "data" / "b.txt").write_text("doc")
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    os.utime(tmp_path / "two" / "data" / "a.jsonl", (1, 1))
    assert _fp(tmp_path / "one" / "data") == _fp(tmp_path / "two" / "data")
    assert _fp(a) == _fp(tmp_path / "two" / "data" / "a.jsonl")
    assert len(_fp(a)) == 64 and set(_fp(a)) <= set("0123456789abcdef")  # a sha256 hex digest


def test_fingerprint_changes_with_one_byte_and_with_the_options(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "a.jsonl", ROWS)
    before = _fp(f)
    data = bytearray(f.read_bytes())
    data[20] ^= 1
    f.write_bytes(bytes(data))
    assert _fp(f) != before
    assert _fp(f, file_type="jsonl") != _fp(f)
    assert _fp(f, split="test") != _fp(f)


def test_fingerprint_changes_when_a_data_file_is_added_or_renamed(
    tmp_path: Path,
) -> None:
    _jsonl(tmp_path / "a.jsonl", ROWS)
    before = _fp(tmp_path)
    (tmp_path / "notes.md").write_text("not data")
    _jsonl(tmp_path / ".hidden" / "x.jsonl", ROWS)
    assert _fp(tmp_path) == before  # load_records does not read them either
    _jsonl(tmp_path / "b.jsonl", ROWS[:1])
    added = _fp(tmp_path)
    assert added != before
    (tmp_path / "b.jsonl").rename(tmp_path / "b.txt")  # same bytes and order, now read as a document
    assert _fp(tmp_path) != added
    (tmp_path / "b.txt").rename(tmp_path / "0.jsonl")  # same bytes, read in another order
    assert _fp(tmp_path) not in {before, added}


def test_fingerprint_of_a_save_to_disk_folder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "one"))
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    assert _fp(tmp_path / "one") == _fp(tmp_path / "two")
    (tmp_path / "two" / "dataset_info.json").write_text("{}")
    assert _fp(tmp_path / "one") != _fp(tmp_path / "two")


def test_fingerprint_of_a_missing_path_is_the_same_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        _fp(tmp_path / "nope.jsonl")
