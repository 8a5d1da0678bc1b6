"""model.loss_chunk_tokens: the chunked output layer + cross entropy gives the plain loss and gradients.

Checked on a tiny Llama with the project's own training step (CausalLMModule._train_loss), full and LoRA,
on packed rows with prompt tokens not trained, so the chunks' boundaries fall inside documents.
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import load_config
from trainer.data.encoded import IGNORE
from trainer.models.build import hf_config, load_tokenizer
from trainer.models.scoring import chunked_token_loss, token_loss
from trainer.parallel import for_config
from trainer.training.module import CausalLMModule


def _batch(vocab: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (2, 96), generator=g)
    labels = ids.clone()
    labels[:, :10] = IGNORE  # a prompt
    labels[1, 50:60] = IGNORE
    positions = torch.cat([torch.arange(40), torch.arange(56)]).repeat(2, 1)
    return {"input_ids": ids, "labels": labels, "position_ids": positions}


def _loss_and_grads(
    overrides: list[str], device: str = "cpu"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    cfg = load_config(overrides)
    config = hf_config(cfg.model, load_tokenizer(cfg.model))
    module = CausalLMModule(cfg, config, 10, for_config(cfg))
    torch.manual_seed(0)
    module.configure_model()
    module.to(device)
    batch = {k: v.to(device) for k, v in _batch(config.vocab_size).items()}
    with torch.autocast(device, dtype=torch.bfloat16, enabled=cfg.precision == "bf16-mixed"):
        total, count = module._train_loss(batch)
    loss = total / count
    loss.backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def _same_as_plain(extra: list[str], device: str = "cpu", tol: float = 1e-6) -> None:
    plain_loss, plain = _loss_and_grads(extra, device)
    chunked_loss, chunked = _loss_and_grads([*extra, "model.loss_chunk_tokens=64"], device)
    assert torch.allclose(plain_loss, chunked_loss, rtol=tol, atol=tol), (plain_loss, chunked_loss)
    assert plain.keys() == chunked.keys() and plain
    for name in plain:
        assert torch.allclose(plain[name], chunked[name], rtol=100 * tol, atol=tol), name


def test_chunked_loss_equals_the_plain_loss_and_gradients_full() -> None:
    _same_as_plain(["peft=none"])


def test_chunked_loss_equals_the_plain_loss_and_gradients_lora() -> None:
    _same_as_plain(["peft=lora"])


def test_chunks_cover_every_trained_token_once() -> None:
    """The function alone, with a head that is a plain matrix: chunk sizes that do and do not divide
    the trained count give the same sum as token_loss over the full logits."""
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(3, 33, 16, generator=g)
    head = torch.nn.Linear(16, 50, bias=False)
    labels = torch.randint(0, 50, (3, 33), generator=g)
    labels[0, :7] = IGNORE
    want, want_count = token_loss(head(hidden), labels)
    for chunk in (1, 5, 64, 1000):
        got, count = chunked_token_loss(hidden, head, labels, chunk)
        assert int(count) == int(want_count) == 3 * 32 - 6
        assert torch.allclose(got, want, rtol=1e-6), chunk
    nothing, count = chunked_token_loss(hidden, head, torch.full_like(labels, IGNORE), 4)
    nothing.backward()  # no trained token: zero, and still a graph through the output layer
    assert int(count) == 0 and float(nothing) == 0.0 and head.weight.grad is not None


GPU = ["hardware.cuda=true", "hardware.gpu_count=1", "hardware.bf16=true", "trainer.precision=bf16-mixed"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_chunked_loss_equals_the_plain_loss_on_cuda_in_bf16() -> None:
    """Under bf16 autocast the logits are bf16 either way; the chunks change only the summation order."""
    _same_as_plain(["peft=none", *GPU], device="cuda", tol=2e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_flex_attention_trains_like_sdpa_on_packed_rows() -> None:
    """FlexAttention with the document mask transformers builds from position ids: the same loss and
    gradients as sdpa's on packed rows (both in fp32 here, so only the kernels differ)."""
    base = ["peft=none", "hardware.cuda=true", "hardware.gpu_count=1", "trainer.precision=32"]
    sdpa_loss, sdpa = _loss_and_grads([*base, "model.attn_implementation=sdpa"], "cuda")
    flex_loss, flex = _loss_and_grads([*base, "model.attn_implementation=flex_attention"], "cuda")
    assert torch.allclose(sdpa_loss, flex_loss, rtol=1e-4), (sdpa_loss, flex_loss)
    for name in sdpa:
        assert torch.allclose(sdpa[name], flex[name], rtol=1e-2, atol=1e-4), name
