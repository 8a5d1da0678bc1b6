"""The preference losses and the sequence scores they read, checked by hand from the papers' formulas.

Expected values are written out with `math`, never by calling the function under test. The same losses
are compared with TRL's implementation in tests/test_objective_losses_trl.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from trainer.data.encoded import IGNORE
from trainer.models.scoring import token_loss
from trainer.objectives import (
    SequenceScores,
    dpo_loss,
    kto_loss,
    orpo_loss,
    score_sequences,
    simpo_loss,
)


def _scores(logps: list[float], tokens: list[int]) -> SequenceScores:
    return SequenceScores(torch.tensor(logps), torch.tensor(tokens))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _log_softmax_at(row: list[float], index: int) -> float:
    return row[index] - math.log(sum(math.exp(v) for v in row))


# --- score_sequences ---------------------------------------------------------------------------------


def test_score_sequences_equals_the_hand_computed_log_probabilities() -> None:
    logits = torch.tensor(
        [
            [[1.0, 2.0, 3.0], [9.0, 0.0, 0.0], [2.0, 0.0, -1.0], [5.0, -5.0, 5.0]],
            [[0.5, -0.5, 0.0], [1.0, 1.0, 4.0], [0.0, 0.0, 0.0], [7.0, 7.0, -7.0]],
        ]
    )
    # Position t's logits predict label t + 1. Row 0: labels 2 (from position 0) and 0 (from 2); the
    # -101 marker at t=2 means position 1 predicts nothing. Row 1: labels 1, 1; then -100.
    labels = torch.tensor([[IGNORE, 2, -101, 0], [0, 1, 1, IGNORE]])
    scores = score_sequences(logits, labels)
    row0 = _log_softmax_at([1.0, 2.0, 3.0], 2) + _log_softmax_at([2.0, 0.0, -1.0], 0)
    row1 = _log_softmax_at([0.5, -0.5, 0.0], 1) + _log_softmax_at([1.0, 1.0, 4.0], 1)
    assert scores.logps.dtype == torch.float32
    torch.testing.assert_close(scores.logps, torch.tensor([row0, row1]))
    assert scores.tokens.tolist() == [2, 2]
    torch.testing.assert_close(scores.mean, torch.tensor([row0 / 2, row1 / 2]))

    # The positions that predict nothing (masked targets, the last position) do not move the scores.
    changed = logits.clone()
    changed[0, 1] = torch.tensor([-3.0, 8.0, 1.0])
    changed[:, 3] = 100.0
    changed[1, 2] = torch.tensor([4.0, -4.0, 0.0])
    torch.testing.assert_close(score_sequences(changed, labels).logps, scores.logps)


def test_score_sequences_is_minus_the_token_loss_per_row_and_has_the_same_gradient() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 9, 11, generator=generator) * 3
    labels = torch.randint(0, 11, (4, 9), generator=generator)
    labels[:, :3] = IGNORE  # a prompt
    labels[1, 6:] = IGNORE  # padding
    labels[2, 4] = IGNORE
    logits.requires_grad_(True)
    scores = score_sequences(logits, labels)
    for row in range(4):
        total, count = token_loss(logits[row : row + 1], labels[row : row + 1])
        torch.testing.assert_close(scores.logps[row], -total)
        assert scores.tokens[row] == count
    (ours,) = torch.autograd.grad(scores.logps.sum(), logits)
    (reference,) = torch.autograd.grad(-token_loss(logits, labels)[0], logits)
    torch.testing.assert_close(ours, reference)


def test_score_sequences_reads_bfloat16_logits_in_float32_and_rows_with_nothing_trained() -> None:
    logits = torch.randn(3, 5, 7, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    labels = torch.tensor([[IGNORE, 1, 2, 3, 4], [IGNORE] * 5, [IGNORE, IGNORE, IGNORE, IGNORE, 6]])
    scores = score_sequences(logits, labels)
    expected = score_sequences(logits.float(), labels)
    assert scores.logps.dtype == torch.float32
    torch.testing.assert_close(scores.logps, expected.logps)
    assert scores.tokens.tolist() == [4, 0, 1]
    assert scores.logps[1] == 0 and scores.mean[1] == 0  # padding rows: 0, not NaN
    assert scores.take(torch.tensor([2, 0])).tokens.tolist() == [1, 4]
    assert scores.take(slice(1, 3)).logps.tolist() == scores.logps[1:].tolist()


def test_score_sequences_keeps_only_the_trained_positions_for_backward() -> None:
    """With prompts masked, backward needs the float32 logits of the completion positions only, not the
    whole [N, T, V] block a full log_softmax would keep (a 128k vocabulary makes that block the largest
    tensor of a step). Measured on what autograd saves, not on time."""
    rows, width, vocab, prompt = 2, 16, 1000, 12
    logits = torch.randn(rows, width, vocab, dtype=torch.bfloat16, requires_grad=True)
    labels = torch.randint(0, vocab, (rows, width))
    labels[:, :prompt] = IGNORE
    saved: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        score_sequences(logits, labels)
    trained_block = rows * (width - prompt) * vocab * 4  # float32
    assert trained_block <= sum(saved.values()) < 1.2 * trained_block
    assert sum(saved.values()) < 0.3 * rows * (width - 1) * vocab * 4  # a full float32 log_softmax


# --- hand-derived values -----------------------------------------------------------------------------


def test_dpo_equals_the_paper_formula_with_and_without_label_smoothing() -> None:
    policy_chosen, policy_rejected = _scores([-10.0, -4.0], [5, 2]), _scores([-12.0, -3.0], [6, 2])
    ref_chosen, ref_rejected = _scores([-11.0, -4.5], [5, 2]), _scores([-11.0, -3.5], [6, 2])
    beta = 0.1
    # h = (log pi(yc) - log ref(yc)) - (log pi(yr) - log ref(yr)) on summed log-probs: 2 and 0.
    margins = [(-10 + 11) - (-12 + 11), (-4 + 4.5) - (-3 + 3.5)]
    plain = sum(-math.log(_sigmoid(beta * h)) for h in margins) / 2
    out = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)
    assert out.loss.item() == pytest.approx(plain, rel=1e-6)
    torch.testing.assert_close(out.chosen_rewards, torch.tensor([0.1 * 1, 0.1 * 0.5]))
    torch.testing.assert_close(out.rejected_rewards, torch.tensor([0.1 * -1, 0.1 * 0.5]))

    eps = 0.2
    smoothed = sum(
        -(1 - eps) * math.log(_sigmoid(beta * h)) - eps * math.log(_sigmoid(-beta * h)) for h in margins
    )
    out = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, label_smoothing=eps)
    assert out.loss.item() == pytest.approx(smoothed / 2, rel=1e-6)


def test_ipo_regresses_the_token_averaged_margin_onto_one_over_two_beta() -> None:
    # Chosen: (-8 - -10) / 4 tokens = 0.5 per token; rejected: (-6 - -5) / 2 tokens = -0.5; h = 1.
    policy_chosen, ref_chosen = _scores([-8.0], [4]), _scores([-10.0], [4])
    policy_rejected, ref_rejected = _scores([-6.0], [2]), _scores([-5.0], [2])
    beta = 0.25
    out = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, loss_type="ipo")
    assert out.loss.item() == pytest.approx((1.0 - 1 / (2 * beta)) ** 2)  # (1 - 2)^2 = 1
    assert out.chosen_rewards.tolist() == pytest.approx([0.25 * 0.5])
    assert out.rejected_rewards.tolist() == pytest.approx([0.25 * -0.5])


def test_orpo_is_the_chosen_nll_plus_beta_times_the_odds_ratio_term() -> None:
    chosen, rejected = _scores([-2.0, -9.0], [4, 3]), _scores([-3.0, -2.0], [2, 8])
    beta = 0.1

    def log_odds(mean_logp: float) -> float:
        p = math.exp(mean_logp)
        return math.log(p / (1 - p))

    means_c, means_r = [-2 / 4, -9 / 3], [-3 / 2, -2 / 8]
    ratios = [log_odds(c) - log_odds(r) for c, r in zip(means_c, means_r, strict=True)]
    terms = [math.log(_sigmoid(x)) for x in ratios]
    nll = (2 + 9) / (4 + 3)  # the token mean over the chosen rows, not the mean of the rows' means
    out = orpo_loss(chosen, rejected, beta)
    assert out.loss.item() == pytest.approx(nll - beta * sum(terms) / 2, rel=1e-6)
    assert out.extra["nll"].item() == pytest.approx(nll, rel=1e-6)
    assert out.extra["log_odds_ratio"].item() == pytest.approx(sum(terms) / 2, rel=1e-6)
    assert out.extra["log_odds_chosen"].item() == pytest.approx(sum(ratios) / 2, rel=1e-6)
    assert out.chosen_rewards.tolist() == pytest.approx([beta * m for m in means_c])
    assert out.rejected_rewards.tolist() == pytest.approx([beta * m for m in means_r])


def test_simpo_uses_length_normalised_rewards_and_a_target_margin() -> None:
    chosen, rejected = _scores([-2.0], [4]), _scores([-3.0], [2])  # means -0.5 and -1.5
    beta, ratio = 2.0, 0.25  # gamma = 0.5
    margin = beta * (-0.5) - beta * (-1.5) - beta * ratio  # 1.5
    out = simpo_loss(chosen, rejected, beta, ratio)
    assert out.loss.item() == pytest.approx(-math.log(_sigmoid(margin)), rel=1e-6)
    assert out.chosen_rewards.tolist() == [-1.0] and out.rejected_rewards.tolist() == [-3.0]
    eps = 0.1
    smoothed = -(1 - eps) * math.log(_sigmoid(margin)) - eps * math.log(_sigmoid(-margin))
    assert simpo_loss(chosen, rejected, beta, ratio, eps).loss.item() == pytest.approx(smoothed, rel=1e-6)


def test_kto_weighs_each_example_against_the_kl_reference_point() -> None:
    policy, ref = _scores([-5.0, -7.0, -4.0], [3, 3, 3]), _scores([-6.0, -6.0, -4.0], [3, 3, 3])
    desirable = torch.tensor([True, False, True])  # log-ratios r = 1, -1, 0
    policy_kl, ref_kl = _scores([-9.0, -8.0, -7.0], [3, 3, 3]), _scores([-9.5, -9.5, -8.0], [3, 3, 3])
    z0 = (0.5 + 1.5 + 1.0) / 3  # mean KL log-ratio = 1
    beta, w_d, w_u = 0.5, 1.0, 1.5
    terms = [
        w_d * (1 - _sigmoid(beta * (1 - z0))),
        w_u * (1 - _sigmoid(beta * (z0 - -1))),
        w_d * (1 - _sigmoid(beta * (0 - z0))),
    ]
    out = kto_loss(policy, ref, desirable, policy_kl, ref_kl, beta, w_d, w_u)
    assert out.loss.item() == pytest.approx(sum(terms) / 3, rel=1e-6)
    assert out.extra["kl"].item() == pytest.approx(z0)
    assert out.chosen_rewards.tolist() == [0.5, 0.0] and out.rejected_rewards.tolist() == [-0.5]

    # A negative KL estimate is clamped to 0; `reduce` sees the local mean (here: another rank had 3).
    out = kto_loss(policy, ref, desirable, ref_kl, policy_kl, beta, w_d, w_u)
    assert out.extra["kl"].item() == 0.0
    out = kto_loss(policy, ref, desirable, policy_kl, ref_kl, beta, reduce=lambda kl: (kl + 3.0) / 2)
    assert out.extra["kl"].item() == pytest.approx(2.0)

    # A batch of one group only: the other's rewards are empty and the loss is the mean of what is there.
    only = torch.tensor([False, False, False])
    out = kto_loss(policy, ref, only, policy_kl, ref_kl, beta)
    expected = sum(1 - _sigmoid(beta * (z0 - r)) for r in (1, -1, 0)) / 3
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.chosen_rewards.numel() == 0 and out.rejected_rewards.numel() == 3

    # No KL rows: z0 = 0 (TRL's choice when it computes no KL), and `reduce` still runs.
    calls: list[float] = []
    empty = _scores([], [])
    out = kto_loss(
        policy, ref, desirable, empty, empty, beta, reduce=lambda kl: calls.append(kl.item()) or kl
    )
    assert calls == [0.0] and out.extra["kl"].item() == 0.0


def test_gradients_of_dpo_raise_the_chosen_and_lower_the_rejected() -> None:
    leaves = [
        torch.tensor([-10.0, -3.0], requires_grad=True),
        torch.tensor([-12.0, -2.0], requires_grad=True),
    ]
    tokens = torch.tensor([4, 4])
    out = dpo_loss(
        SequenceScores(leaves[0], tokens),
        SequenceScores(leaves[1], tokens),
        _scores([-11.0, -3.0], [4, 4]),
        _scores([-11.0, -3.0], [4, 4]),
        beta=0.1,
    )
    out.loss.backward()
    chosen_grad, rejected_grad = leaves[0].grad, leaves[1].grad
    assert chosen_grad is not None and rejected_grad is not None
    assert torch.isfinite(chosen_grad).all() and torch.isfinite(rejected_grad).all()
    # Gradient descent moves logps against the gradient: up for chosen, down for rejected.
    assert (chosen_grad < 0).all() and (rejected_grad > 0).all()
    # d/d(pc) of mean_i -log sigmoid(beta h_i) = -beta (1 - sigmoid(beta h_i)) / n_pairs.
    expected = [-0.1 * (1 - _sigmoid(0.1 * h)) / 2 for h in (2.0, -1.0)]
    assert chosen_grad.tolist() == pytest.approx(expected, rel=1e-5)
    assert rejected_grad.tolist() == pytest.approx([-g for g in expected], rel=1e-5)


def test_orpo_gradient_is_finite_when_the_chosen_answer_is_almost_certain() -> None:
    # Mean log-probs within 1e-7 of 0 put log(1 - exp(x)) at its steep end; the gradient must stay finite.
    logps = torch.tensor([-1e-7, -0.3, -2.0], requires_grad=True)
    chosen = SequenceScores(logps, torch.tensor([1, 1, 1]))
    orpo_loss(chosen, _scores([-1.0, -0.2, -2.5], [1, 1, 1]), beta=0.1).loss.backward()
    assert logps.grad is not None and torch.isfinite(logps.grad).all()


def test_inputs_that_do_not_make_a_batch_are_refused() -> None:
    one, two = _scores([-1.0], [1]), _scores([-1.0, -2.0], [1, 1])
    with pytest.raises(ValueError, match="same number"):
        dpo_loss(one, two, one, one, beta=0.1)
    with pytest.raises(ValueError, match="same number"):
        simpo_loss(_scores([], []), _scores([], []), 2.0, 0.5)
    with pytest.raises(ValueError, match="loss_type 'hinge'"):
        dpo_loss(one, one, one, one, beta=0.1, loss_type="hinge")
    with pytest.raises(ValueError, match="not to IPO"):
        dpo_loss(one, one, one, one, beta=0.1, label_smoothing=0.1, loss_type="ipo")
    with pytest.raises(ValueError, match=r"\[0, 0.5\)"):
        simpo_loss(one, one, 2.0, 0.5, label_smoothing=0.5)
    with pytest.raises(ValueError, match="labels"):
        kto_loss(two, two, torch.tensor([True]), two, two, beta=0.1)
    with pytest.raises(ValueError, match="1-D"):
        SequenceScores(torch.zeros(2), torch.zeros(3))
