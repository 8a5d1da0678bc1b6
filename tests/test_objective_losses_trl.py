"""The preference losses against TRL 1.16's own code, on the same tensors (several seeds and betas).

The comparisons call TRL's real loss code: trainer methods, called unbound. Those methods read a few
attributes of their trainer (beta, the loss type, an accelerator to gather metrics over processes) and
call a model; the stand-ins below carry exactly those attributes, and the model stand-ins return fixed
numbers (per-token log-probs, or logits). They are not mocks of what is tested: the code under test is
ours, the code it is compared with is TRL's, unchanged. TRL is a test-only dependency (the `dev` extra);
without it this module skips.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
import torch

pytest.importorskip("trl")

from trainer.data.encoded import IGNORE
from trainer.objectives import SequenceScores, dpo_loss, kto_loss, orpo_loss, score_sequences, simpo_loss

SEEDS = (0, 1, 2)
CLOSE = {"rtol": 1e-6, "atol": 1e-6}


@pytest.fixture(scope="module")
def trl() -> SimpleNamespace:
    from trl import DPOTrainer, KTOTrainer
    from trl.experimental.cpo import CPOTrainer
    from trl.experimental.orpo import ORPOTrainer

    return SimpleNamespace(dpo=DPOTrainer, kto=KTOTrainer, cpo=CPOTrainer, orpo=ORPOTrainer)


class _OneProcess:
    """What TRL reads from its accelerate.Accelerator here: the device, and gathers over one process."""

    device = torch.device("cpu")

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    gather_for_metrics = gather


def _trainer_attributes(**attributes: Any) -> dict[str, Any]:
    return {
        "model": SimpleNamespace(training=True),
        "accelerator": _OneProcess(),
        "aux_loss_enabled": False,
        "_metrics": defaultdict(lambda: defaultdict(list)),
        "_total_train_tokens": 0,
        "_tp_size": 1,
        **attributes,
    }


class _FusedHeadOutput:
    """The model TRL's DPO and KTO trainers call: `model(..., labels=..., fused_lm_head=True)` answers
    per-token log-probs, zero where the label is -100. Row r's log-probs are looked up by its first input
    id; its whole sequence log-prob sits on the first completion token, so the row sums are exact."""

    def __init__(self) -> None:
        self.rows: dict[int, torch.Tensor] = {}

    def add(self, first_ids: range, scores: SequenceScores, width: int) -> dict[str, torch.Tensor]:
        """Rows for `scores` as TRL's collators lay them out: one prompt token, then the completion."""
        input_ids = torch.zeros(len(scores), width, dtype=torch.long)
        completion_mask = torch.zeros(len(scores), width, dtype=torch.long)
        for row, (first, logp, tokens) in enumerate(zip(first_ids, scores.logps, scores.tokens, strict=True)):
            input_ids[row, 0] = first
            completion_mask[row, 1 : 1 + int(tokens)] = 1
            per_token = torch.zeros(width - 1)
            per_token[0] = logp
            self.rows[first] = per_token
        return {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "completion_mask": completion_mask,
        }

    def __call__(self, input_ids: torch.Tensor, labels: torch.Tensor, fused_lm_head: bool, **_: Any) -> Any:
        assert fused_lm_head
        log_probs = torch.stack([self.rows[int(first)] for first in input_ids[:, 0]])
        log_probs = log_probs.masked_fill(labels[:, 1:] == -100, 0.0)
        zeros = torch.zeros_like(log_probs)
        return SimpleNamespace(log_probs=log_probs, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool())


def _random_scores(generator: torch.Generator, n: int, scale: float = 30.0) -> SequenceScores:
    tokens = torch.randint(1, 12, (n,), generator=generator)
    return SequenceScores(-torch.rand(n, generator=generator) * scale - 0.1, tokens)


def _nearby(generator: torch.Generator, scores: SequenceScores) -> SequenceScores:
    """A reference model's scores of the same rows: the same token counts, log-probs a few nats away."""
    return SequenceScores(scores.logps + torch.randn(len(scores), generator=generator) * 3, scores.tokens)


def _stack(first: SequenceScores, second: SequenceScores) -> SequenceScores:
    return SequenceScores(torch.cat((first.logps, second.logps)), torch.cat((first.tokens, second.tokens)))


def test_score_sequences_equals_trl_fused_lm_head_on_a_tiny_llama() -> None:
    """TRL 1.16 scores sequences with a fused LM head (per-token log-probs of the labels, zero where a
    label is -100); summed per row, they are the numbers every one of its preference losses starts from."""
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=50,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    model = LlamaForCausalLM(config).eval()
    add_fused_lm_head(model)
    input_ids = torch.randint(0, 50, (3, 9))
    labels = input_ids.masked_fill(torch.arange(9) < 3, IGNORE)  # a three-token prompt
    labels[1, 6:] = IGNORE
    with torch.no_grad():
        fused = model(input_ids=input_ids, labels=labels, fused_lm_head=True).log_probs
        scores = score_sequences(model(input_ids=input_ids).logits, labels)
    torch.testing.assert_close(scores.logps, fused.sum(-1), **CLOSE)
    assert scores.tokens.tolist() == (fused != 0).sum(-1).tolist() == [6, 3, 6]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("beta", [0.05, 0.1, 0.5])
@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_dpo_and_ipo_equal_trl_dpo_trainer(
    trl: SimpleNamespace, seed: int, beta: float, loss_type: str
) -> None:
    generator = torch.Generator().manual_seed(seed)
    pairs = 1 + seed * 3  # a batch of one pair, too
    chosen, rejected = _random_scores(generator, pairs), _random_scores(generator, pairs)
    ref_chosen, ref_rejected = _nearby(generator, chosen), _nearby(generator, rejected)
    model = _FusedHeadOutput()
    inputs = model.add(range(2 * pairs), _stack(chosen, rejected), width=13)  # TRL: [chosen; rejected]
    inputs.update(ref_chosen_logps=ref_chosen.logps, ref_rejected_logps=ref_rejected.logps)
    stand_in = SimpleNamespace(
        **_trainer_attributes(
            precompute_ref_logps=True,
            ld_alpha=None,
            f_divergence_type="reverse_kl",
            loss_types=[loss_type],
            loss_weights=[1.0],
            beta=beta,
            label_smoothing=0.0,
            use_weighting=False,
        )
    )
    expected = trl.dpo._compute_loss(stand_in, model, inputs, return_outputs=False)
    out = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta, loss_type=loss_type)
    torch.testing.assert_close(out.loss, expected, **CLOSE)
    if loss_type == "sigmoid":  # TRL logs sum-based rewards for every loss type; ours follow IPO's averages
        metrics = stand_in._metrics["train"]
        assert out.chosen_rewards.mean().item() == pytest.approx(metrics["rewards/chosen"][-1], rel=1e-6)
        assert out.rejected_rewards.mean().item() == pytest.approx(metrics["rewards/rejected"][-1], rel=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("label_smoothing", [0.1, 0.3])
def test_label_smoothed_dpo_equals_trl_conservative_sigmoid(
    trl: SimpleNamespace, seed: int, label_smoothing: float
) -> None:
    """TRL 1.16's DPOTrainer applies label_smoothing to its robust/EXO/AOT losses only, no longer to
    "sigmoid". Its conservative sigmoid survives in CPOTrainer.cpo_loss, which is DPO's formula once it
    is handed the log-ratios to the reference in place of the policy log-probs."""
    generator = torch.Generator().manual_seed(seed)
    chosen, rejected = _random_scores(generator, 5), _random_scores(generator, 5)
    ref_chosen, ref_rejected = _nearby(generator, chosen), _nearby(generator, rejected)
    beta = 0.1 * (seed + 1)
    stand_in = SimpleNamespace(
        accelerator=_OneProcess(), alpha=0.0, loss_type="sigmoid", beta=beta, label_smoothing=label_smoothing
    )
    losses, chosen_rewards, rejected_rewards = trl.cpo.cpo_loss(
        stand_in, chosen.logps - ref_chosen.logps, rejected.logps - ref_rejected.logps
    )
    out = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta, label_smoothing=label_smoothing)
    torch.testing.assert_close(out.loss, losses.mean(), **CLOSE)
    torch.testing.assert_close(out.chosen_rewards, chosen_rewards, **CLOSE)
    torch.testing.assert_close(out.rejected_rewards, rejected_rewards, **CLOSE)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("beta", [0.1, 0.5])
@pytest.mark.parametrize("groups", ["mixed", "desirable only", "undesirable only"])
def test_kto_equals_trl_kto_trainer(trl: SimpleNamespace, seed: int, beta: float, groups: str) -> None:
    generator = torch.Generator().manual_seed(seed)
    rows = 6
    policy, policy_kl = _random_scores(generator, rows), _random_scores(generator, rows)
    ref, ref_kl = _nearby(generator, policy), _nearby(generator, policy_kl)
    desirable = {
        "mixed": torch.rand(rows, generator=generator) < 0.5,
        "desirable only": torch.ones(rows, dtype=torch.bool),
        "undesirable only": torch.zeros(rows, dtype=torch.bool),
    }[groups]
    model = _FusedHeadOutput()
    inputs = model.add(range(rows), policy, width=13)
    kl_rows = model.add(range(1000, 1000 + rows), policy_kl, width=13)
    inputs.update({f"KL_{key}": value for key, value in kl_rows.items()})
    inputs.update(label=desirable, ref_logps=ref.logps, ref_KL_logps=ref_kl.logps)

    class KTOStandIn:  # TRL's loss calls its own KL helper through self
        _compute_kl_logps = trl.kto._compute_kl_logps

    stand_in = KTOStandIn()
    weights = {"desirable_weight": 1.0, "undesirable_weight": 1.33}
    attributes = _trainer_attributes(precompute_ref_logps=True, calculate_KL=True, loss_type="kto", beta=beta)
    vars(stand_in).update(attributes, **weights)
    expected = trl.kto._compute_loss(stand_in, model, inputs, return_outputs=False)
    out = kto_loss(policy, ref, desirable, policy_kl, ref_kl, beta, **weights)
    torch.testing.assert_close(out.loss, expected, **CLOSE)
    metrics = stand_in._metrics["train"]
    assert out.extra["kl"].item() == pytest.approx(metrics["kl"][-1], rel=1e-6)
    if desirable.any():
        assert out.chosen_rewards.mean().item() == pytest.approx(metrics["rewards/chosen"][-1], rel=1e-6)
    if not desirable.all():
        assert out.rejected_rewards.mean().item() == pytest.approx(metrics["rewards/rejected"][-1], rel=1e-6)


def _paired_logits(generator: torch.Generator, pairs: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits for [chosen; rejected] rows and TRL's paired batch for them: a one-token prompt (so TRL's
    ORPO NLL, which also covers the prompt, spans the same positions as ours), completions of varying
    length, padding after them. Most completion tokens are the logits' argmax, so some answers are
    likely (mean log-prob above -log 2, where log(1 - p) changes formula) and others are not."""
    width, vocab = 10, 6
    logits = torch.randn(2 * pairs, width, vocab, generator=generator) * 4
    input_ids = torch.randint(0, vocab, (2 * pairs, width), generator=generator)
    likely = torch.rand(2 * pairs, width - 1, generator=generator) < 0.8  # mostly the most likely token
    input_ids[:, 1:] = torch.where(likely, logits[:, :-1].argmax(-1), input_ids[:, 1:])
    lengths = torch.randint(2, width + 1, (2 * pairs,), generator=generator)
    attention_mask = (torch.arange(width) < lengths[:, None]).long()
    labels = input_ids.masked_fill(attention_mask == 0, IGNORE)
    labels[:, 0] = IGNORE
    batch = {}
    for name, half in (("chosen", slice(0, pairs)), ("rejected", slice(pairs, 2 * pairs))):
        batch[f"{name}_input_ids"] = input_ids[half]
        batch[f"{name}_attention_mask"] = attention_mask[half]
        batch[f"{name}_labels"] = labels[half]
    return logits, batch


def _paired_stand_in(trainer: type, **attributes: Any) -> Any:
    """An object with TRL's own methods for the paired forward (called through self) and the attributes
    they read; the model is a stand-in that answers fixed logits."""

    class PairedStandIn:
        concatenated_forward = trainer.concatenated_forward
        concatenated_inputs = inspect.getattr_static(trainer, "concatenated_inputs")
        get_batch_logps = inspect.getattr_static(trainer, "get_batch_logps")

    stand_in = PairedStandIn()
    vars(stand_in).update(
        accelerator=_OneProcess(), aux_loss_enabled=False, is_encoder_decoder=False, **attributes
    )
    return stand_in


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("beta", [0.1, 0.25, 1.0])
def test_orpo_equals_trl_orpo_trainer(trl: SimpleNamespace, seed: int, beta: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    pairs = 1 + seed * 2
    logits, batch = _paired_logits(generator, pairs)
    stand_in = _paired_stand_in(trl.orpo, padding_value=0, beta=beta)
    stand_in.odds_ratio_loss = trl.orpo.odds_ratio_loss.__get__(stand_in)
    expected, metrics = trl.orpo.get_batch_loss_metrics(
        stand_in, lambda *_, **__: SimpleNamespace(logits=logits), batch
    )

    scores = score_sequences(logits, torch.cat((batch["chosen_labels"], batch["rejected_labels"])))
    out = orpo_loss(scores.take(slice(0, pairs)), scores.take(slice(pairs, None)), beta)
    torch.testing.assert_close(out.loss, expected, **CLOSE)
    for ours, theirs in [
        (out.extra["nll"], "nll_loss"),
        (out.extra["log_odds_ratio"], "log_odds_ratio"),
        (out.extra["log_odds_chosen"], "log_odds_chosen"),
        (out.chosen_rewards.mean(), "rewards/chosen"),
        (out.rejected_rewards.mean(), "rewards/rejected"),
    ]:
        assert ours.item() == pytest.approx(metrics[theirs], rel=1e-5, abs=1e-6), theirs


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("beta", "gamma_beta_ratio"), [(2.0, 0.25), (2.5, 0.55), (10.0, 0.3)])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_simpo_equals_trl_cpo_trainer(
    trl: SimpleNamespace, seed: int, beta: float, gamma_beta_ratio: float, label_smoothing: float
) -> None:
    generator = torch.Generator().manual_seed(seed)
    pairs = 1 + seed * 2
    logits, batch = _paired_logits(generator, pairs)
    stand_in = _paired_stand_in(
        trl.cpo,
        pad_token_id=0,
        beta=beta,
        loss_type="simpo",
        simpo_gamma=beta * gamma_beta_ratio,  # TRL takes gamma itself; SimPO's paper tunes gamma / beta
        label_smoothing=label_smoothing,
        alpha=0.0,
        cpo_alpha=0.0,  # SimPO proper: no added NLL term
    )
    stand_in.cpo_loss = trl.cpo.cpo_loss.__get__(stand_in)
    expected, metrics = trl.cpo.get_batch_loss_metrics(
        stand_in, lambda *_, **__: SimpleNamespace(logits=logits), batch
    )

    scores = score_sequences(logits, torch.cat((batch["chosen_labels"], batch["rejected_labels"])))
    out = simpo_loss(
        scores.take(slice(0, pairs)), scores.take(slice(pairs, None)), beta, gamma_beta_ratio, label_smoothing
    )
    torch.testing.assert_close(out.loss, expected, **CLOSE)
    assert out.chosen_rewards.mean().item() == pytest.approx(metrics["rewards/chosen"], rel=1e-5, abs=1e-6)
    assert out.rejected_rewards.mean().item() == pytest.approx(
        metrics["rewards/rejected"], rel=1e-5, abs=1e-6
    )
