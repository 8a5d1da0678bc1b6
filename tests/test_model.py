"""Model build, parameter accounting, the exact-match metric, optimizer groups and schedules."""

from __future__ import annotations

import math

import pytest
import torch

from tests.conftest import load_config
from trainer.config.peft import LoraConfig, NoPeft
from trainer.config.scheduler import SchedulerConfig
from trainer.errors import UserError
from trainer.models.accounting import count_params, meta_param_counts
from trainer.models.build import build_model, hf_config, load_tokenizer
from trainer.models.optim import lr_factor, param_groups
from trainer.models.peft import apply_peft
from trainer.models.scoring import exact_matches, token_loss


@pytest.fixture(scope="module")
def built():
    cfg = load_config()
    tok = load_tokenizer(cfg.model)
    config = hf_config(cfg.model, tok)
    return cfg, tok, config


def test_tiny_model_is_a_llama_sized_to_the_tokenizer(built) -> None:
    cfg, tok, config = built
    model = build_model(cfg.model, config)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == len(tok) == 384
    assert model.config.eos_token_id == tok.eos_token_id
    assert model.config.num_hidden_layers == cfg.model.architecture.num_hidden_layers


def test_meta_counts_equal_real_counts(built) -> None:
    cfg, _, config = built
    real = count_params(build_model(cfg.model, config))
    assert meta_param_counts(cfg.model, config, NoPeft()) == real
    assert real.total == real.trainable


def test_lora_trains_a_small_fraction(built) -> None:
    cfg, _, config = built
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
    counts = meta_param_counts(cfg.model, config, lora)
    layers, hidden = config.num_hidden_layers, config.hidden_size
    assert counts.trainable == layers * 2 * (4 * hidden * 2)  # A (r x h) + B (h x r) on q and v
    real = count_params(apply_peft(build_model(cfg.model, config), lora))
    assert real == counts


def test_exact_match_needs_every_trained_token_right() -> None:
    vocab = 5
    labels = torch.tensor([[-100, -100, 3, 4], [-100, -100, 1, 2]])
    logits = torch.zeros(2, 4, vocab)
    # Position t predicts label t+1: example 0 right at both trained positions, example 1 wrong at the last.
    logits[0, 1, 3] = logits[0, 2, 4] = 1.0
    logits[1, 1, 1] = logits[1, 2, 0] = 1.0
    assert exact_matches(logits, labels).tolist() == [1.0, 0.0]


def test_token_loss_ignores_masked_positions() -> None:
    logits = torch.randn(1, 4, 7)
    labels = torch.tensor([[-100, -100, 3, 5]])
    total, count = token_loss(logits, labels)
    expected = torch.nn.functional.cross_entropy(logits[0, 1:3], labels[0, 2:], reduction="sum")
    assert count.item() == 2 and torch.allclose(total, expected)


def test_no_weight_decay_on_norms_and_biases(built) -> None:
    cfg, _, config = built
    model = build_model(cfg.model, config)
    decay, no_decay = param_groups(model, 0.1)
    assert all(p.ndim >= 2 for p in decay["params"]) and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 1 for p in no_decay["params"]) and len(no_decay["params"]) > 0


@pytest.mark.parametrize("name,end", [("cosine", 0.1), ("linear", 0.1), ("constant", 1.0)])
def test_schedules_warm_up_then_reach_their_end(name: str, end: float) -> None:
    cfg = SchedulerConfig(name=name, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, cfg, 100) == pytest.approx(1 / 11)
    assert lr_factor(10, cfg, 100) == pytest.approx(1.0)
    assert lr_factor(100, cfg, 100) == pytest.approx(end)
    if name == "cosine":
        assert lr_factor(55, cfg, 100) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_unreachable_hub_model_says_how_to_use_a_local_folder(monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    cfg = load_config(["model=llama"])
    with pytest.raises(UserError) as info:
        load_tokenizer(cfg.model)
    assert info.value.message.startswith("model.name_or_path=meta-llama/Llama-3.2-1B: not a local path")
    assert "model.name_or_path=DIR" in (info.value.hint or "")


def test_local_model_folder_loads(tmp_path, built) -> None:
    cfg, tok, config = built
    model = build_model(cfg.model, config)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    local = load_config(["model=llama", f"model.name_or_path={tmp_path}", "model.dtype=float32"])
    loaded = build_model(local.model, hf_config(local.model, load_tokenizer(local.model)))
    ids = torch.tensor([[1, 5, 9]])
    assert torch.equal(loaded(ids).logits, model(ids).logits)


@pytest.mark.parametrize(
    "overrides,kind",
    [(["optimizer=adamw"], "AdamW"), (["optimizer=sgd"], "SGD"), (["optimizer=adafactor"], "Adafactor")],
)
def test_each_cpu_optimizer_builds_and_steps(overrides: list[str], kind: str) -> None:
    from trainer.models.optim import build_optimizer

    cfg = load_config(overrides)
    tok = load_tokenizer(cfg.model)
    model = build_model(cfg.model, hf_config(cfg.model, tok))
    opt = build_optimizer(model, cfg.optimizer)
    assert type(opt).__name__ == kind
    before = model.model.embed_tokens.weight.detach().clone()
    ids = torch.tensor([[1, 5, 9, 12]])
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    assert not torch.equal(before, model.model.embed_tokens.weight)
