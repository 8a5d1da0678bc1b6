"""Sample packing: the bin packer, packed rows, and that a packed batch trains exactly like the unpacked
examples (no attention across documents, positions as if alone)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.conftest import load_config
from trainer.data.collate import Collator, PackedCollator
from trainer.data.encoded import IGNORE, TokenizedSet
from trainer.data.packing import PackedSet, best_fit_decreasing, minimum_bin_slack, pack_bins
from trainer.models.scoring import token_loss
from trainer.training.module import CausalLMModule


def check_bins(bins: list[list[int]], lengths: np.ndarray, capacity: int) -> None:
    flat = [i for b in bins for i in b]
    assert sorted(flat) == list(range(len(lengths)))  # every index exactly once
    assert all(sum(int(lengths[i]) for i in b) <= capacity for b in bins)
    assert all(b == sorted(b) and b for b in bins)


def naive_best_fit_count(lengths: np.ndarray, capacity: int) -> int:
    """Reference best-fit decreasing, O(n * bins): best_fit_decreasing must reach it, pack_bins beat it."""
    spaces: list[int] = []
    for size in sorted(lengths.tolist(), reverse=True):
        fits = [k for k, s in enumerate(spaces) if s >= size]
        if fits:
            k = min(fits, key=lambda k: spaces[k])
            spaces[k] -= size
        else:
            spaces.append(capacity - size)
    return len(spaces)


def test_pack_bins_known_set() -> None:
    # 6 opens bin 0 (4 left), 5 opens bin 1 (5 left), 4 fills bin 0 exactly, 3 and 2 fill bin 1.
    assert pack_bins([6, 5, 4, 3, 2], 10) == [[0, 2], [1, 3, 4]]
    assert pack_bins([], 10) == []
    assert pack_bins([10, 1, 10], 10) == [[0], [2], [1]]  # ties by index, full items alone


def test_pack_bins_valid_deterministic_and_tight() -> None:
    rng = np.random.default_rng(1)
    for capacity in (64, 100, 512):
        lengths = rng.integers(1, capacity + 1, size=300)
        bins = pack_bins(lengths, capacity)
        check_bins(bins, lengths, capacity)
        assert bins == pack_bins(lengths.tolist(), capacity)  # same input, same rows (array or list)
        assert len(best_fit_decreasing(lengths, capacity)) == naive_best_fit_count(lengths, capacity)
        assert -(-int(lengths.sum()) // capacity) <= len(bins) <= naive_best_fit_count(lengths, capacity)


def test_pack_bins_rejects_an_item_over_capacity() -> None:
    with pytest.raises(ValueError, match="item 1 has 11 tokens"):
        pack_bins([3, 11, 2], 10)
    with pytest.raises(ValueError):
        pack_bins([3], 0)


def test_pack_bins_on_50k_items() -> None:
    """Every item once, no row over capacity, rows nearly full (its time: benchmarks/data_pipeline.py)."""
    lengths = np.random.default_rng(0).integers(10, 1001, size=50_000)
    bins = pack_bins(lengths, 2048)
    check_bins(bins, lengths, 2048)
    assert int(lengths.sum()) / (len(bins) * 2048) > 0.99


def make_examples(lengths: list[int], vocab: int, seed: int = 0) -> TokenizedSet:
    """Random token ids; labels IGNORE over a prompt of a third of every other example (response-only
    data), the rest trained whole (train_on_inputs), whose first label would cross a document boundary."""
    rng = np.random.default_rng(seed)
    examples = []
    for k, n in enumerate(lengths):
        ids = rng.integers(1, vocab, size=n).tolist()
        prompt = n // 3 if k % 2 else 0
        examples.append({"input_ids": ids, "labels": [IGNORE] * prompt + ids[prompt:]})
    return TokenizedSet.from_examples(examples)


def test_packed_rows_restart_positions_and_mask_first_labels() -> None:
    data = TokenizedSet.from_examples(
        [{"input_ids": [5] * n, "labels": [7] * n} for n in (3, 4, 2, 7)]  # every label trained
    )
    packed = PackedSet(data, capacity=8)
    # 7 opens row 0 (1 left), 4 opens row 1 (4 left), 3 joins it (1 left), 2 fits nowhere: row 2.
    assert packed.rows == [[3], [0, 1], [2]]
    assert packed.real_tokens == 16 and len(packed) == 3
    assert packed.efficiency == pytest.approx(16 / 24)
    row = packed[1]  # documents 0 (3 tokens) then 1 (4 tokens), in index order
    assert row["position_ids"].tolist() == [0, 1, 2, 0, 1, 2, 3]
    assert row["labels"].tolist() == [IGNORE, 7, 7, IGNORE, 7, 7, 7]
    assert row["input_ids"].tolist() == [5] * 7
    assert packed[-1]["position_ids"].tolist() == [0, 1]
    with pytest.raises(IndexError):
        packed[3]


def test_packed_collator_pads_as_a_separate_document() -> None:
    rows = [
        {
            "input_ids": np.array([4, 5, 6]),
            "labels": np.array([IGNORE, 5, 6]),
            "position_ids": np.array([0, 1, 0]),
        },
        {"input_ids": np.array([8]), "labels": np.array([IGNORE]), "position_ids": np.array([0])},
    ]
    batch = PackedCollator(pad_id=1)(rows)
    assert set(batch) == {"input_ids", "labels", "position_ids", "real_tokens"}  # no attention_mask
    assert batch["real_tokens"].item() == 4
    assert batch["input_ids"].tolist() == [[4, 5, 6], [8, 1, 1]]
    assert batch["labels"].tolist() == [[IGNORE, 5, 6], [IGNORE, IGNORE, IGNORE]]
    assert batch["position_ids"].tolist() == [[0, 1, 0], [0, 0, 1]]


def tiny_llama(attn: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        attn_implementation=attn,
    )
    return LlamaForCausalLM(config).float().eval()


LENGTHS = [13, 7, 21, 5, 17, 9]  # packs into 2 rows of 38 and 34 tokens at capacity 40


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_batch_equals_examples_alone(attn: str) -> None:
    model = tiny_llama(attn)
    data = make_examples(LENGTHS, vocab=64)
    packed = PackedSet(data, capacity=40)
    assert len(packed) == 2 and all(len(r) > 1 for r in packed.rows)
    batch = PackedCollator(pad_id=0)([packed[0], packed[1]])
    assert batch["input_ids"].shape == (2, 38)  # the shorter row is padded

    with torch.no_grad():
        logits = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits
        total, count = token_loss(logits, batch["labels"])
        alone_total, alone_count = torch.tensor(0.0), torch.tensor(0)
        for row, docs in enumerate(packed.rows):
            start = 0
            for d in docs:
                ex = data[d]
                ids = torch.as_tensor(ex["input_ids"], dtype=torch.long)[None]
                alone = model(input_ids=ids, use_cache=False).logits
                t, c = token_loss(alone, torch.as_tensor(ex["labels"], dtype=torch.long)[None])
                alone_total, alone_count = alone_total + t, alone_count + c
                n = ids.size(1)
                torch.testing.assert_close(logits[row, start : start + n], alone[0], atol=1e-5, rtol=0)
                start += n

        assert count == alone_count
        assert abs((total / count - alone_total / alone_count).item()) < 1e-5

        # Negative controls: a mask (plain causal attention over the whole row) or positions that run on
        # across documents let them see each other, and the loss moves.
        masked = model(
            input_ids=batch["input_ids"], attention_mask=torch.ones_like(batch["input_ids"]), use_cache=False
        ).logits
        arange = torch.arange(batch["input_ids"].size(1)).expand_as(batch["input_ids"])
        running = model(input_ids=batch["input_ids"], position_ids=arange, use_cache=False).logits
        for wrong in (masked, running):
            wrong_total, wrong_count = token_loss(wrong, batch["labels"])
            assert abs((wrong_total / wrong_count - alone_total / alone_count).item()) > 1e-4


class Recorder(torch.nn.Module):
    def forward(self, **kwargs):
        self.kwargs = kwargs
        return SimpleNamespace(logits=torch.zeros(1))


@pytest.fixture(scope="module")
def module() -> CausalLMModule:
    from trainer.parallel import for_config

    cfg = load_config()
    return CausalLMModule(cfg, hf_config=None, total_steps=1, parallel=for_config(cfg))


def test_module_forward_passes_what_the_batch_has(module: CausalLMModule) -> None:
    module.model = Recorder()
    ids, ones = torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3, dtype=torch.long)
    module({"input_ids": ids, "position_ids": torch.tensor([[0, 1, 0]]), "labels": ids})
    assert set(module.model.kwargs) == {"input_ids", "position_ids", "use_cache"}
    assert module.model.kwargs["position_ids"].tolist() == [[0, 1, 0]]
    module({"input_ids": ids, "attention_mask": ones, "labels": ids})
    assert set(module.model.kwargs) == {"input_ids", "attention_mask", "use_cache"}


def test_module_loss_packed_equals_padded(module: CausalLMModule) -> None:
    module.model = tiny_llama("sdpa")
    data = make_examples(LENGTHS, vocab=64, seed=3)
    packed = PackedSet(data, capacity=40)
    with torch.no_grad():
        packed_batch = PackedCollator(pad_id=0)([packed[i] for i in range(len(packed))])
        padded_batch = Collator(pad_id=0)([data[i] for i in range(len(data))])
        losses = [token_loss(module(b), b["labels"]) for b in (packed_batch, padded_batch)]
    (pt, pc), (ut, uc) = losses
    assert pc == uc
    assert abs((pt / pc - ut / uc).item()) < 1e-5


def test_minimum_bin_slack_closes_what_best_fit_leaves_open() -> None:
    sizes = [5, 4, 3, 3, 3, 2]  # 20 tokens, capacity 10: two full bins exist
    assert len(best_fit_decreasing(np.array(sizes), 10)) == 3  # 5+4, 3+3+3, 2
    bins = pack_bins(sizes, 10)
    assert len(bins) == 2 and sorted(i for b in bins for i in b) == list(range(6))
    assert all(sum(sizes[i] for i in b) == 10 for b in bins)
    assert bins == pack_bins(sizes, 10)  # deterministic
    assert minimum_bin_slack(np.array([7, 7, 7]), 10) == [[0], [1], [2]]  # equal lengths: index order
