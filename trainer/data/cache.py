"""The tokenized-data cache: one folder per content key, written atomically, loaded memory-mapped.

The key is a hash of everything that changes the tokens: the data files' bytes (or the hub dataset's
fingerprint), the tokenizer's vocabulary, special tokens and chat template, and every data setting that
reaches the encoder (formats, sequence_len, too_long, train_on_inputs, the mix, the validation split and
its seed). Modification times and paths do not count, so a copied file hits and an edited one misses.
Batch sizes and packing are not in the key: they are applied to the cached examples on every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.data.encoded import EncodeStats, TokenizedSet
from trainer.disk import require_writable as require_writable_folder

# Bump when the encoders change what they produce for the same inputs: old entries then miss.
CACHE_VERSION = 2  # 2: duplicate counts, held-out duplicates back in training
ENV_DIR = "TRAINER_CACHE_DIR"


def cache_root(configured: str | None) -> Path:
    """`data.cache_dir`, else $TRAINER_CACHE_DIR, else ~/.cache/trainer/data."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    return Path.home() / ".cache" / "trainer" / "data"


def require_writable(configured: str | None) -> None:
    """UserError unless the cache folder can be written: probed before tokenizing, since `store` would
    find out only once every example is encoded. Not on a hit: a read-only cache that has the entry
    (built by `trainer preprocess` on another node) is fine."""
    value = configured or (f"null (${ENV_DIR})" if os.environ.get(ENV_DIR) else "null")
    fix = "point data.cache_dir at a folder you can write, or set data.cache=false"
    require_writable_folder(cache_root(configured), "data.cache_dir", value, "data cache folder", fix)


# The files that define a tokenizer; a model folder's weights and other files are not among them.
TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "chat_template.jinja",
        "chat_template.json",
    }
)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """The tokenizer's content, not its path: the tokenizer files of its local folder (a 1.3 MB Llama 2
    tokenizer hashes in milliseconds where serializing it takes 0.09 s; a model folder's weights are
    not read), else its serialized pipeline; plus what can change after loading: added tokens, special
    tokens, the BOS switch."""
    from trainer.data.sources import hash_file

    h = hashlib.sha256(type(tokenizer).__name__.encode())
    folder = Path(str(getattr(tokenizer, "name_or_path", "")))
    files = sorted(f for f in folder.iterdir() if f.name in TOKENIZER_FILES) if folder.is_dir() else []
    if files:
        for f in files:
            hash_file(h, f.name, f)
    elif getattr(tokenizer, "backend_tokenizer", None) is not None:
        h.update(tokenizer.backend_tokenizer.to_str().encode())
    else:  # slow tokenizers: the vocabulary is what decides the ids
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(json.dumps(sorted(tokenizer.get_added_vocab().items())).encode())
    h.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    h.update(str(getattr(tokenizer, "add_bos_token", None)).encode())
    return h.hexdigest()


def make_key(parts: dict[str, Any]) -> str:
    blob = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass
class CachedData:
    train: TokenizedSet
    val: TokenizedSet
    stats: dict[str, dict[str, EncodeStats]]  # "train"/"val" -> dataset name -> counts
    mixed: dict[str, int]  # training examples per dataset after the mix
    folder: Path


def load(root: Path, key: str) -> CachedData | None:
    folder = root / key
    meta_file = folder / "meta.json"
    if not meta_file.exists():
        return None
    try:
        meta = json.loads(meta_file.read_text())
        stats = {
            part: {name: EncodeStats.from_dict(s) for name, s in by_name.items()}
            for part, by_name in meta["stats"].items()
        }
        mixed = {name: int(n) for name, n in meta["mixed"].items()}
        train, val = TokenizedSet.load(folder, "train"), TokenizedSet.load(folder, "val")
        return CachedData(train, val, stats, mixed, folder)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged entry is rebuilt, not trusted


def store(
    root: Path,
    key: str,
    train: TokenizedSet,
    val: TokenizedSet,
    stats: dict[str, dict[str, EncodeStats]],
    mixed: dict[str, int],
    described: dict[str, Any],
) -> Path:
    """Write into a private folder, then rename: a reader never sees half an entry, and two ranks that
    build the same key at once both end with one complete copy."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    tmp = root / f".{key}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    train.save(tmp, "train")
    val.save(tmp, "val")
    meta = {
        "version": CACHE_VERSION,
        "key": key,
        "inputs": described,
        "mixed": mixed,
        "stats": {part: {n: s.to_dict() for n, s in by_name.items()} for part, by_name in stats.items()},
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    if final.exists() and load(root, key) is None:  # a damaged entry: move it aside, then replace it
        aside = root / f".{key}.{os.getpid()}.damaged"
        os.rename(final, aside)
        shutil.rmtree(aside, ignore_errors=True)
    try:
        os.rename(tmp, final)
    except OSError:  # another process finished first: its entry is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return final
