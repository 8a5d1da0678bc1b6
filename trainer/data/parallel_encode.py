"""Encode a dataset's records, in several processes when that pays.

A fast tokenizer already spreads one batch over threads, but rendering chat templates and building
label masks is Python; with tens of thousands of records and spare cores, chunks go to forked worker
processes (no re-import of the libraries; each chunk, with the tokenizer, is pickled to its worker) and
come back in order, so the result is the same as one process.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

from trainer.data.encoded import EncodeOptions, EncodeStats, Example

# Below this many records per worker, starting workers costs more than it saves.
RECORDS_PER_WORKER = 20_000


def default_num_proc(n_records: int, configured: int | None) -> int:
    if configured is not None:
        return configured
    return max(1, min(os.cpu_count() or 1, 8, n_records // RECORDS_PER_WORKER))


def _encode_chunk(args: tuple) -> tuple[list[Example], EncodeStats]:
    from trainer.data.formats import encode_dataset

    records, fmt, tokenizer, opts, key, first = args
    return encode_dataset(records, fmt, tokenizer, opts, key, first_index=first)


def encode_records(
    records: list[dict[str, Any]],
    fmt: Any,
    tokenizer: Any,
    opts: EncodeOptions,
    key: str,
    num_proc: int | None = None,
) -> tuple[list[Example], EncodeStats]:
    workers = default_num_proc(len(records), num_proc)
    if workers <= 1 or len(records) < 2 * workers or "fork" not in multiprocessing.get_all_start_methods():
        return _encode_chunk((records, fmt, tokenizer, opts, key, 0))
    size = -(-len(records) // workers)
    chunks = [(records[i : i + size], fmt, tokenizer, opts, key, i) for i in range(0, len(records), size)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_encode_chunk, chunks)
    examples: list[Example] = []
    stats = EncodeStats()
    for part_examples, part_stats in parts:
        examples.extend(part_examples)
        stats = stats.merge(part_stats)
    return examples, stats
