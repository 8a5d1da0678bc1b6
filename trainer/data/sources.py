"""Read raw records from local files, folders, `save_to_disk` datasets or hub ids, and fingerprint them.

Local data is read here rather than through `datasets.load_dataset`, because a user's broken file should
produce one line naming the file and line to fix (`data.datasets.x.path=/d/a.jsonl:17: invalid JSON`),
not a multi-page traceback from a builder script, and because a 1000-record JSON file should take
milliseconds, not a cache round trip. Hub ids do go through `datasets`; an unreachable hub says how to use
a local file instead. `fingerprint` is built from file names and bytes (never modification times), so
a cache keyed on it survives copying the data and is invalidated by any edit.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainer.config.dataset import CompletionFormat, DatasetConfig
from trainer.config.paths import SUFFIX_TYPES, looks_local
from trainer.errors import UserError, first_line
from trainer.hub import download_hint, require_hub

Record = dict[str, Any]

# SUFFIX_TYPES (extension -> file_type): `auto` reads by these; a folder's data files are those with one.
_SUFFIXES = " ".join(SUFFIX_TYPES)
_TYPES = "|".join(SUFFIX_TYPES.values())
_SUFFIX = {kind: suffix for suffix, kind in SUFFIX_TYPES.items()}
_CHUNK = 1 << 20
# csv's default 128 KiB field cap would reject a long document in a text column; 2**31-1 fits a C long.
_CSV_FIELD_LIMIT = 2**31 - 1
_FINGERPRINT_VERSION = b"trainer.data.sources/1"


def load_records(ds: DatasetConfig, key: str) -> list[Record]:
    """All records of dataset `ds`; `key` is its config key (data.datasets.NAME), named in every error."""
    if not looks_local(ds.path):
        records = _load_hub(ds, key).to_list()
        where = _where(key, ds.path)
    else:
        root = _existing(ds, key)
        where = _where(key, root)
        if _is_saved_dataset(root):
            records = _load_saved(root, ds, key).to_list()
        else:
            records = []
            # A .txt document lands in the field the completion format reads (`text` unless renamed).
            text_field = ds.format.field if isinstance(ds.format, CompletionFormat) else "text"
            for _, file, file_type in _data_files(root, ds, key):
                rows = _READERS[file_type](file, _where(key, file))
                if file_type == "text":
                    rows = [{text_field: r["text"]} for r in rows]
                records.extend(rows)
    if not records:
        raise UserError(f"{where}: holds no examples", hint=f"add examples, or remove {key} from the config")
    return records


def fingerprint(ds: DatasetConfig, key: str) -> str:
    """A sha256 hex digest that changes whenever the data `load_records` would return can change.

    Local data: each file's name relative to the path (a single file: its name) and its bytes, in sorted
    order, plus file_type and split. Hub ids: (id, split, revision) and the fingerprint `datasets` computes
    from its cached files, which means the dataset is loaded (from the cache after the first time).
    """
    digest = hashlib.sha256(_FINGERPRINT_VERSION)
    _update(digest, ds.file_type, ds.split)
    if not looks_local(ds.path):
        dataset = _load_hub(ds, key)
        _update(digest, "hub", ds.path, ds.revision or "", dataset._fingerprint)
        return digest.hexdigest()
    root = _existing(ds, key)
    # A saved dataset's state.json and dataset_info.json matter as much as its .arrow files: hash them all.
    saved = _is_saved_dataset(root)
    files = _all_files(root) if saved else [(rel, f) for rel, f, _ in _data_files(root, ds, key)]
    for relative, file in files:
        try:
            hash_file(digest, relative, file)
        except OSError as err:
            raise _unreadable(_where(key, file), err) from None
    return digest.hexdigest()


def hash_file(digest: Any, name: str, file: Path) -> None:
    """Add a file's name, size and bytes (read in 1 MiB chunks) to `digest`."""
    _update(digest, name, str(file.stat().st_size))
    with file.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)


def _where(key: str, path: object) -> str:
    return f"{key}.path={path}"


def _update(digest: Any, *parts: str) -> None:
    # Length-prefixed, so ("ab", "c") and ("a", "bc") hash differently.
    for part in parts:
        data = part.encode()
        digest.update(len(data).to_bytes(8, "little") + data)


def _existing(ds: DatasetConfig, key: str) -> Path:
    path = Path(ds.path).expanduser()
    if not path.exists():
        raise UserError(
            f"{_where(key, path)}: file not found",
            hint=f"check the path (relative paths start at the current folder, {os.getcwd()})",
        )
    return path


def _is_saved_dataset(path: Path) -> bool:
    """What `Dataset.save_to_disk` (state.json + dataset_info.json) or `DatasetDict.save_to_disk` writes."""
    has = [(path / name).is_file() for name in ("dataset_dict.json", "state.json", "dataset_info.json")]
    return has[0] or (has[1] and has[2])


def _data_files(root: Path, ds: DatasetConfig, key: str) -> list[tuple[str, Path, str]]:
    """(relative name, path, file_type) of a file, or of a folder's data files sorted by relative path."""
    if root.is_file():
        return [(root.name, root, _file_type(root, ds, key))]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        # Hidden folders are version control, caches, editor state: never data.
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            file_type = SUFFIX_TYPES.get(Path(name).suffix.lower())
            if name.startswith(".") or file_type is None:
                continue
            if ds.file_type == "auto" or file_type == ds.file_type:
                file = Path(dirpath, name)
                found.append((file.relative_to(root).parts, file, file_type))
    if not found:
        only = ds.file_type
        wanted = _SUFFIXES if only == "auto" else f"{_SUFFIX[only]} (file_type={only})"
        raise UserError(
            f"{_where(key, root)}: no data files in this folder (looked for {wanted}, hidden files skipped)",
            hint="point the path at a folder holding data files, a file, or a `save_to_disk` dataset folder",
        )
    found.sort(key=lambda item: item[0])
    return [("/".join(parts), file, file_type) for parts, file, file_type in found]


def _all_files(root: Path) -> list[tuple[str, Path]]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return sorted((p.relative_to(root).as_posix(), p) for p in files)


def _file_type(file: Path, ds: DatasetConfig, key: str) -> str:
    if ds.file_type != "auto":
        return ds.file_type
    file_type = SUFFIX_TYPES.get(file.suffix.lower())
    if file_type is None:
        found = f"{file.suffix!r} files" if file.suffix else "a file without an extension"
        raise UserError(
            f"{_where(key, file)}: cannot tell how to read {found} (supported: {_SUFFIXES})",
            hint=f"rename the file, or say how to read it: {key}.file_type={_TYPES}",
        )
    return file_type


# --- hub ids and save_to_disk folders: through `datasets`, imported only when needed ----------------------


def _load_hub(ds: DatasetConfig, key: str) -> Any:
    label = f"{key}.path"
    require_hub(ds.path, label)
    import datasets

    try:
        return datasets.load_dataset(ds.path, split=ds.split, revision=ds.revision)
    except Exception as err:  # offline, gated, missing, unknown split: all end the same way for the user
        raise UserError(
            f"{_where(key, ds.path)}: could not load this hub dataset ({_describe(err)})",
            hint=download_hint(label, ds.path),
        ) from None


def _load_saved(root: Path, ds: DatasetConfig, key: str) -> Any:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(root))
    except Exception as err:  # a half-copied or hand-edited folder: say so, without the traceback
        raise UserError(
            f"{_where(key, root)}: could not load this `save_to_disk` folder ({_describe(err)})",
            hint="save it again with save_to_disk, or point the path at plain data files",
        ) from None
    if not isinstance(loaded, datasets.DatasetDict):
        return loaded
    if ds.split not in loaded:
        raise UserError(
            f"{_where(key, root)}: the saved DatasetDict has no split {ds.split!r} "
            f"(it has: {', '.join(loaded)})",
            hint=f"choose one of them: {key}.split={next(iter(loaded), 'train')}",
        )
    return loaded[ds.split]


def _describe(err: BaseException) -> str:
    """The exception's type and first line: enough to search for, short enough for a one-line error."""
    return f"{type(err).__name__}: {first_line(err)}"


# --- local file readers: each takes the file and the `key.path=file` prefix of its errors ---------------


def _unreadable(where: str, err: OSError) -> UserError:
    return UserError(f"{where}: cannot read it ({err.strerror or err})", hint="check the file's permissions")


def _text(file: Path, where: str) -> str:
    try:
        data = file.read_bytes()
    except OSError as err:
        raise _unreadable(where, err) from None
    # Spreadsheet and Windows editors prepend a byte order mark; it is not part of the data.
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(
            f"{where}: not UTF-8 text (byte {err.start + bom})",
            hint="re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
        ) from None


def json_kind(value: Any) -> str:
    """A JSON value's kind as a message says it: `an object`, `a list`, `a string`, `a number`..."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return kinds.get(type(value), "a number")


def _read_json(file: Path, where: str) -> list[Record]:
    try:
        data = json.loads(_text(file, where))
    except json.JSONDecodeError as err:
        raise UserError(
            f"{where}:{err.lineno}: invalid JSON ({err.msg})",
            hint="fix the JSON at that line (a missing comma, quote or bracket is the usual cause)",
        ) from None
    if not isinstance(data, list):
        raise UserError(
            f"{where}: expected a JSON list of objects, found {json_kind(data)}",
            hint='write the records as [{"field": ...}, ...], or as JSON Lines (.jsonl): one object a line',
        )
    bad = next((i for i, row in enumerate(data) if not isinstance(row, dict)), None)
    if bad is not None:
        raise UserError(
            f"{where}: expected a JSON list of objects, the item at index {bad} is {json_kind(data[bad])}",
            hint="make every item of the list an object with the dataset's fields",
        )
    return data


def _read_jsonl(file: Path, where: str) -> list[Record]:
    records = []
    # split("\n"), not splitlines(): JSON strings may hold a raw U+2028 or \x1c, which splitlines breaks on.
    for lineno, line in enumerate(_text(file, where).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(
                f"{where}:{lineno}: invalid JSON ({err.msg})",
                hint="fix that line: JSON Lines holds one complete JSON object per line",
            ) from None
        if not isinstance(row, dict):
            raise UserError(
                f"{where}:{lineno}: expected a JSON object per line, found {json_kind(row)}",
                hint='write each line as {"field": ...}',
            )
        records.append(row)
    return records


def _read_csv(file: Path, where: str) -> list[Record]:
    """The first row names the fields; values stay strings. csv.reader rather than DictReader, because
    DictReader silently pads short rows and hides extra fields, where a wrong field count is a mistake."""
    rows = csv.reader(io.StringIO(_text(file, where), newline=""))
    records: list[Record] = []
    previous_limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        header = next(rows, [])
        for row in rows:
            if not row:  # a blank line, skipped as DictReader does
                continue
            if len(row) != len(header):
                raise UserError(
                    f"{where}:{rows.line_num}: {len(row)} fields, the header has {len(header)}",
                    hint="quote values that hold commas, and give every row the header's fields",
                )
            records.append(dict(zip(header, row, strict=True)))
    except csv.Error as err:
        raise UserError(f"{where}:{rows.line_num}: invalid CSV ({err})", hint="fix the quoting") from None
    finally:
        csv.field_size_limit(previous_limit)
    return records


def _read_text(file: Path, where: str) -> list[Record]:
    """A .txt file is one document (the completion format's `text` field); an empty file is none."""
    text = _text(file, where)
    return [{"text": text}] if text.strip() else []


def _read_parquet(file: Path, where: str) -> list[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(file).to_pylist()
    except (pa.ArrowException, OSError) as err:
        raise UserError(
            f"{where}: not a readable Parquet file ({_describe(err)})",
            hint="write it again (pandas.DataFrame.to_parquet or pyarrow.parquet.write_table), "
            "or set file_type to how it is really stored",
        ) from None


_READERS: dict[str, Callable[[Path, str], list[Record]]] = {
    "json": _read_json,
    "jsonl": _read_jsonl,
    "parquet": _read_parquet,
    "csv": _read_csv,
    "text": _read_text,
}
