"""Sample packing (`data.packing: true`): several short examples share one row of `capacity` tokens.

Unpacked batches pad every example to the longest in the batch, so with instruction data (many short
examples, a few long ones) much of each step is spent on padding. Packing fills rows instead.

A packed row carries `position_ids` that restart at 0 for every document and no `attention_mask`.
transformers 5 reads the restarts as document boundaries (`masking_utils.find_packed_sequence_indices`
for sdpa/eager, varlen `cu_seqlens` for flash_attention_2), so no token attends across documents and
every document sees the rotary positions it would see alone: the loss is that of the unpacked examples.
The label of each document's first token is IGNORE, since it would otherwise be predicted from the
previous document's last token (unpacked, the first token is never a target either).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from trainer.data.encoded import IGNORE, TokenizedSet


def pack_bins(lengths: Sequence[int] | np.ndarray, capacity: int) -> list[list[int]]:
    """Group item indices into bins whose total length is at most `capacity`, in as few bins as we can.

    Best-fit decreasing first (fast, and at the lower bound ceil(tokens / capacity) on large sets). When
    it ends above that bound and the set is small enough, minimum bin slack is tried too and the fewer
    bins win: on the 999 Alpaca demo examples (Llama 2 tokenizer, 2048) best fit needs 115 rows where 114
    suffice, and one row is 0.9 % of the slots.
    """
    sizes = _checked(lengths, capacity)
    if sizes.size == 0:
        return []
    bins = best_fit_decreasing(sizes, capacity)
    lower = -(-int(sizes.sum()) // capacity)
    if len(bins) > lower and _slack_cost(sizes, lower) <= MAX_SLACK_WORK:
        tighter = minimum_bin_slack(sizes, capacity)
        if len(tighter) < len(bins):
            return tighter
    return bins


# Bigint shifts that minimum_bin_slack may spend (about 1 s of Python); beyond it best fit stands alone.
MAX_SLACK_WORK = 3_000_000


def _slack_cost(sizes: np.ndarray, bins: int) -> int:
    """Shifts per bin (distinct lengths, binary-split by their counts) times the bins."""
    _, counts = np.unique(sizes, return_counts=True)
    return bins * int(np.sum(1 + np.floor(np.log2(counts))))


def minimum_bin_slack(sizes: np.ndarray, capacity: int) -> list[list[int]]:
    """Each bin takes the longest item left, then the subset of the remaining items that fills the rest
    best (a subset sum over the distinct lengths, counts binary-split, as one Python int of bits);
    deterministic: items of equal length are taken in index order."""
    pools: dict[int, list[int]] = {}  # length -> indices, highest first, so pop() takes the lowest
    for index in range(len(sizes) - 1, -1, -1):
        pools.setdefault(int(sizes[index]), []).append(index)
    bins: list[list[int]] = []
    while pools:
        longest = max(pools)
        members = [_take(pools, longest)]
        room = capacity - longest
        for length, k in _best_subset(pools, room):
            members += [_take(pools, length) for _ in range(k)]
        bins.append(sorted(members))
    return bins


def _take(pools: dict[int, list[int]], length: int) -> int:
    pool = pools[length]
    index = pool.pop()
    if not pool:
        del pools[length]
    return index


def _best_subset(pools: dict[int, list[int]], room: int) -> list[tuple[int, int]]:
    """(length, how many) filling at most `room` as fully as possible."""
    chunks: list[tuple[int, int]] = []
    for length in sorted((n for n in pools if n <= room), reverse=True):
        left, k = min(len(pools[length]), room // length), 1
        while left > 0:
            chunks.append((length, min(k, left)))
            left -= min(k, left)
            k *= 2
    mask = (1 << (room + 1)) - 1
    reach, before = 1, []
    for length, k in chunks:
        before.append(reach)
        reach = (reach | (reach << (length * k))) & mask
        if reach >> room & 1:
            break  # a perfect fill
    target = reach.bit_length() - 1
    used = []
    for j in range(len(before) - 1, -1, -1):
        if before[j] >> target & 1:
            continue  # reachable without chunk j
        used.append(chunks[j])
        target -= chunks[j][0] * chunks[j][1]
    return used


def _checked(lengths: Sequence[int] | np.ndarray, capacity: int) -> np.ndarray:
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity}")
    sizes = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if sizes.size and sizes.min() < 0:
        raise ValueError("lengths must not be negative")
    if sizes.size and sizes.max() > capacity:
        longest = int(np.argmax(sizes))
        raise ValueError(
            f"item {longest} has {int(sizes[longest])} tokens, more than the packing capacity {capacity}; "
            "drop or truncate long examples before packing"
        )
    return sizes


def best_fit_decreasing(sizes: np.ndarray, capacity: int) -> list[list[int]]:
    """Best-fit decreasing.

    Items are placed longest first (ties by index, so the result depends only on the input); each goes
    into the open bin it fills most tightly, or a new bin when none has room. Best fit and first fit
    share the 11/9 * OPT + 6/9 worst case and gave the same bin count on every set we measured (alpaca
    demo, uniform and log-normal lengths, usually at the lower bound); best fit is kept because it is the
    cheaper one to index: one bisect over remaining spaces, where first fit needs a tree over bins.

    Bins are found by remaining space, not scanned: `free[r]` holds the bins with exactly r tokens
    left and `spaces` the sorted distinct values of r in use (at most capacity + 1 of them), so each
    item costs one bisect, not a pass over all bins. Bins come out in the order they were opened,
    each with its indices in ascending order, so rows are reproducible.
    """
    order = np.argsort(-sizes, kind="stable")  # longest first; stable sort keeps ties in index order
    bins: list[list[int]] = []
    free: list[list[int]] = [[] for _ in range(capacity + 1)]  # remaining space -> bins, as a stack
    spaces: list[int] = []  # sorted remaining spaces that have at least one bin
    for index, size in zip(order.tolist(), sizes[order].tolist(), strict=True):
        at = bisect.bisect_left(spaces, size)
        if at == len(spaces):  # no open bin has room
            b, space = len(bins), capacity
            bins.append([])
        else:
            space = spaces[at]
            b = free[space].pop()
            if not free[space]:
                del spaces[at]
        bins[b].append(index)
        left = space - size
        if not free[left]:
            bisect.insort(spaces, left)
        free[left].append(b)
    return [sorted(members) for members in bins]


class PackedSet(Sequence):
    """Rows of whole documents from a `TokenizedSet`, each at most `capacity` tokens long.

    Rows are materialized on access from the set's flat arrays (a vectorized gather), so packing costs
    one `pack_bins` call and a list of indices, not a second copy of the data.
    """

    def __init__(self, examples: TokenizedSet, capacity: int) -> None:
        self.examples = examples
        self.capacity = capacity
        lengths = np.asarray(examples.lengths, dtype=np.int64)
        self.rows: list[list[int]] = pack_bins(lengths, capacity)
        self.real_tokens: int = int(lengths.sum())
        slots = len(self.rows) * capacity
        # Share of the row slots that hold real tokens; the rest is padding of the last rows' tails.
        self.efficiency: float = self.real_tokens / slots if slots else 0.0

    def __len__(self) -> int:
        return len(self.rows)

    def head(self, n: int) -> PackedSet:
        """The first `n` rows only (same examples underneath): what data.overfit_batches trains on."""
        part = object.__new__(PackedSet)
        part.examples, part.capacity, part.rows = self.examples, self.capacity, self.rows[:n]
        lengths = np.asarray(self.examples.lengths, dtype=np.int64)
        part.real_tokens = int(sum(int(lengths[r].sum()) for r in part.rows))
        part.efficiency = part.real_tokens / (n * self.capacity) if n else 0.0
        return part

    def members(self) -> np.ndarray:
        """Indices of the examples in these rows, in order."""
        return np.asarray(sorted(i for row in self.rows for i in row), dtype=np.int64)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:  # type: ignore[override]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        docs = np.asarray(self.rows[i], dtype=np.int64)
        offsets = np.asarray(self.examples.offsets)
        lens = offsets[docs + 1] - offsets[docs]
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])  # where each document begins in the row
        total = int(lens.sum())
        within = np.arange(total, dtype=np.int64) - np.repeat(starts, lens)  # 0.. per document
        source = np.repeat(offsets[docs], lens) + within
        labels = np.asarray(self.examples.labels[source], dtype=np.int64)
        labels[starts[lens > 0]] = IGNORE  # never predict a document's first token from the one before it
        return {
            "input_ids": np.asarray(self.examples.input_ids[source], dtype=np.int64),
            "labels": labels,
            "position_ids": within,
        }
