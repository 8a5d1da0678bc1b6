"""The preference losses as pure functions over per-sequence log-probabilities.

A preference step runs the policy (and, for DPO/IPO/KTO, a frozen reference) over whole sequences,
reduces each sequence to one number with `score_sequences` (the summed log-probability of its trained
tokens, plus how many there were), and hands those numbers to one of the losses below. Keeping the
losses free of models, Lightning and config means each is checked on hand-built tensors and against
TRL's implementation (tests/test_objective_losses.py), and the LightningModule only chooses which to call.

Conventions shared by every loss:
- inputs are `SequenceScores` of one row per sequence; pair losses take chosen and rejected rows in the
  same order (row i of each is one pair);
- `loss` is the mean over the batch's pairs (KTO: over its examples), the scalar backward takes;
- rewards are the implicit rewards each method defines, detached, one per row, for logging
  (rewards/chosen, rewards/rejected, margins and accuracy are computed from them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

DPO_LOSS_TYPES = ("sigmoid", "ipo")


@dataclass(frozen=True)
class SequenceScores:
    """Per-sequence scores: `logps[i]` is the sum over row i's trained positions of log p(label | prefix),
    and `tokens[i]` how many positions that sum has. The sum and the count travel together because some
    losses use the sum (DPO, KTO) and others the length-normalised mean (IPO, ORPO, SimPO)."""

    logps: torch.Tensor
    tokens: torch.Tensor

    def __post_init__(self) -> None:
        if self.logps.dim() != 1 or self.logps.shape != self.tokens.shape:
            raise ValueError(
                f"SequenceScores wants two 1-D tensors of one length, got logps {tuple(self.logps.shape)}"
                f" and tokens {tuple(self.tokens.shape)}"
            )

    def __len__(self) -> int:
        return self.logps.shape[0]

    @property
    def mean(self) -> torch.Tensor:
        """The average log-probability per trained token. A row with no trained token (padding) reads 0
        rather than NaN, so one such row cannot poison a batch's loss."""
        return self.logps / self.tokens.clamp(min=1).to(self.logps.dtype)

    def take(self, rows: slice | torch.Tensor) -> SequenceScores:
        """The scores of a subset of rows (a slice, indices or a boolean mask), e.g. the chosen half of a
        batch that stacked chosen and rejected sequences for one forward pass."""
        return SequenceScores(self.logps[rows], self.tokens[rows])


@dataclass(frozen=True)
class ObjectiveOutput:
    """What a loss returns: the scalar to minimise and the detached numbers worth logging."""

    loss: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


def score_sequences(logits: torch.Tensor, labels: torch.Tensor) -> SequenceScores:
    """Sum of log p(label | prefix) per row, over the positions whose label is a token id (>= 0).

    Shifted by one like `trainer.models.scoring.token_loss`: logits at position t predict the label at
    t + 1. Any negative label (IGNORE = -100, or another marker) is left out. Only the trained positions
    are selected before the float32 log-softmax, and the softmax itself is never materialised: the label's
    logit minus the position's logsumexp is its log-probability. With a 128k vocabulary and prompts that
    are masked, that keeps the float32 copy to the completion tokens instead of the whole [N, T, V] block.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match labels {tuple(labels.shape)}")
    targets = labels[:, 1:]
    trained = targets >= 0
    rows = trained.nonzero(as_tuple=True)[0]
    picked = logits[:, :-1][trained].float()  # [K, V]: only the positions that count
    label_logits = picked.gather(-1, targets[trained].unsqueeze(-1)).squeeze(-1)
    token_logps = label_logits - torch.logsumexp(picked, dim=-1)
    logps = torch.zeros(labels.shape[0], dtype=torch.float32, device=logits.device)
    return SequenceScores(logps.index_add(0, rows, token_logps), trained.sum(dim=1))


def _check_batch(*scores: SequenceScores) -> None:
    """Pair losses line rows up by index: every input must have the same number of rows, at least one."""
    sizes = {len(s) for s in scores}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(
            f"a preference batch needs the same number (>= 1) of rows in every input, got {sizes}"
        )


def _smoothed_logistic(margin: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """-log sigmoid(margin), with the preference label trusted only with probability 1 - eps: the
    conservative ("cDPO") form -(1-eps) log sigmoid(m) - eps log sigmoid(-m). At eps = 0 the loss keeps
    pushing the margin up forever; with eps > 0 it has a finite optimum, which bounds over-fitting to
    noisy labels."""
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    loss = -F.logsigmoid(margin)
    if label_smoothing:
        loss = (1 - label_smoothing) * loss - label_smoothing * F.logsigmoid(-margin)
    return loss


def _log_ratio(policy: SequenceScores, ref: SequenceScores, per_token: bool) -> torch.Tensor:
    """log pi(y|x) - log pi_ref(y|x) per row; divided by the row's trained-token count when per_token
    (both models score the same tokens, so the policy's count is the sequence length)."""
    ratio = policy.logps - ref.logps
    return ratio / policy.tokens.clamp(min=1).to(ratio.dtype) if per_token else ratio


def dpo_loss(
    policy_chosen: SequenceScores,
    policy_rejected: SequenceScores,
    ref_chosen: SequenceScores,
    ref_rejected: SequenceScores,
    beta: float,
    label_smoothing: float = 0.0,
    loss_type: str = "sigmoid",
) -> ObjectiveOutput:
    """Direct preference optimisation against a frozen reference.

    "sigmoid": DPO (Rafailov et al. 2023, arXiv:2305.18290). The policy's log-ratio to the reference is
    an implicit reward r = beta * log(pi/pi_ref); the loss is the Bradley-Terry negative log-likelihood
    that the chosen answer beats the rejected one, -log sigmoid(beta * h) with
    h = (log pi(yc) - log pi_ref(yc)) - (log pi(yr) - log pi_ref(yr)) on summed log-probs. label_smoothing
    gives the conservative variant (cDPO; Mitchell 2023) for labels assumed wrong with that probability.

    "ipo": IPO (Azar et al. 2023, arXiv:2310.12036, eq. 17). Instead of maximising h without bound, it
    regresses h onto 1/(2 beta): (h - 1/(2 beta))^2, so beta acts as the regularisation strength tau.
    Like TRL 1.16 (whose comment says the IPO authors confirmed it), h here uses log-ratios averaged over
    each completion's tokens, not summed: a sum would make the target margin depend on answer length.
    The rewards are then beta times the averaged log-ratios as well.
    """
    _check_batch(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if loss_type not in DPO_LOSS_TYPES:
        raise ValueError(f"dpo loss_type {loss_type!r} is not one of {DPO_LOSS_TYPES}")
    per_token = loss_type == "ipo"
    chosen = _log_ratio(policy_chosen, ref_chosen, per_token)
    rejected = _log_ratio(policy_rejected, ref_rejected, per_token)
    if loss_type == "sigmoid":
        losses = _smoothed_logistic(beta * (chosen - rejected), label_smoothing)
    else:
        if label_smoothing:
            raise ValueError("label_smoothing applies to the sigmoid (DPO) loss, not to IPO")
        losses = (chosen - rejected - 1 / (2 * beta)) ** 2
    return ObjectiveOutput(losses.mean(), beta * chosen.detach(), beta * rejected.detach())


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0 without cancellation: log1p(-exp(x)) far below 0, log(-expm1(x)) near
    it (the switch at -log 2 is Maechler's). Each branch sees only inputs on its own side, so the branch
    torch.where discards cannot put an infinite gradient (0 * inf = NaN) into the one it keeps."""
    cut = -math.log(2)
    far = torch.log1p(-torch.exp(x.clamp(max=cut)))
    near = torch.log(-torch.expm1(x.clamp(min=cut)))
    return torch.where(x < cut, far, near)


def orpo_loss(policy_chosen: SequenceScores, policy_rejected: SequenceScores, beta: float) -> ObjectiveOutput:
    """ORPO (Hong et al. 2024, arXiv:2403.07691): supervised fine-tuning and preference in one loss, with
    no reference model.

    loss = NLL(chosen) - beta * mean log sigmoid(log odds(yc) - log odds(yr)), where odds(y) = p/(1-p)
    on the length-averaged log-probability log p = mean log pi(y|x) (eqs. 4-7 of the paper; the log odds
    use a stable log(1 - exp)). The NLL is the token mean over all chosen rows of the batch, as TRL 1.16
    computes it with one cross entropy over the chosen half. It covers the positions the caller trains:
    the paper's SFT term is on the response; TRL's ORPOTrainer also includes the prompt tokens.

    Rewards are beta * mean log pi(y|x), as TRL logs them. extra: `nll`, `log_odds_ratio` (the batch mean
    of log sigmoid(log odds ratio), TRL's metric of that name) and `log_odds_chosen` (the mean log odds
    ratio itself, positive once chosen answers are the likelier).
    """
    _check_batch(policy_chosen, policy_rejected)
    chosen, rejected = policy_chosen.mean.float(), policy_rejected.mean.float()
    log_odds = (chosen - rejected) - (_log1mexp(chosen) - _log1mexp(rejected))
    ratio = F.logsigmoid(log_odds)
    nll = -policy_chosen.logps.sum() / policy_chosen.tokens.sum().clamp(min=1)
    return ObjectiveOutput(
        loss=nll - beta * ratio.mean(),
        chosen_rewards=beta * chosen.detach(),
        rejected_rewards=beta * rejected.detach(),
        extra={
            "nll": nll.detach(),
            "log_odds_ratio": ratio.mean().detach(),
            "log_odds_chosen": log_odds.mean().detach(),
        },
    )


def simpo_loss(
    policy_chosen: SequenceScores,
    policy_rejected: SequenceScores,
    beta: float,
    gamma_beta_ratio: float,
    label_smoothing: float = 0.0,
) -> ObjectiveOutput:
    """SimPO (Meng et al. 2024, arXiv:2405.14734): DPO's Bradley-Terry loss with no reference model,
    on the length-normalised reward r = beta * mean log pi(y|x) (the quantity generation ranks by), and a
    target margin gamma = beta * gamma_beta_ratio the chosen reward must exceed the rejected one by:
    -log sigmoid(rc - rr - gamma), with the same optional label smoothing as cDPO. Equal to TRL 1.16's
    CPOTrainer with loss_type="simpo", cpo_alpha=0 and simpo_gamma = beta * gamma_beta_ratio.
    """
    _check_batch(policy_chosen, policy_rejected)
    chosen = beta * policy_chosen.mean
    rejected = beta * policy_rejected.mean
    losses = _smoothed_logistic(chosen - rejected - beta * gamma_beta_ratio, label_smoothing)
    return ObjectiveOutput(losses.mean(), chosen.detach(), rejected.detach())


def kto_loss(
    policy: SequenceScores,
    ref: SequenceScores,
    desirable: torch.Tensor,
    policy_kl: SequenceScores,
    ref_kl: SequenceScores,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> ObjectiveOutput:
    """KTO (Ethayarajh et al. 2024, arXiv:2402.01306, eq. 7): preference from unpaired examples, each
    labelled desirable or not, with a prospect-theory value around a reference point z0.

    z0 estimates KL(pi || pi_ref) from mismatched prompt/completion rows (`policy_kl`, `ref_kl`): the mean
    log-ratio over them, averaged over data-parallel ranks by `reduce` when given (TRL gathers it), then
    clamped at 0 and detached, so it moves the point of reference but takes no gradient. With r = log
    pi(y|x) - log pi_ref(y|x) per row, a desirable row costs desirable_weight * (1 - sigmoid(beta (r - z0)))
    and an undesirable one undesirable_weight * (1 - sigmoid(beta (z0 - r))). The loss is the mean over all
    rows of both groups together (TRL 1.16 concatenates them), so either group may be absent from a batch.
    Empty KL rows mean no estimate: z0 = 0, as TRL does when it computes no KL. `reduce` is still called
    then, so that every rank joins a collective it runs. Rewards: beta * r per row; extra: `kl` (z0).
    """
    _check_batch(policy, ref)
    desirable = desirable.to(torch.bool)
    if desirable.shape != policy.logps.shape or len(policy_kl) != len(ref_kl):
        raise ValueError(
            f"kto: {len(policy)} rows with {tuple(desirable.shape)} labels, "
            f"{len(policy_kl)} policy and {len(ref_kl)} reference KL rows"
        )
    with torch.no_grad():
        if len(policy_kl):
            kl = (policy_kl.logps - ref_kl.logps).mean()
        else:
            kl = torch.zeros((), dtype=policy.logps.dtype, device=policy.logps.device)
        if reduce is not None:
            kl = reduce(kl)
        kl = kl.clamp(min=0)
    log_ratio = _log_ratio(policy, ref, per_token=False)
    chosen, rejected = log_ratio[desirable], log_ratio[~desirable]
    losses = torch.cat(
        (
            desirable_weight * (1 - torch.sigmoid(beta * (chosen - kl))),
            undesirable_weight * (1 - torch.sigmoid(beta * (kl - rejected))),
        )
    )
    return ObjectiveOutput(losses.mean(), beta * chosen.detach(), beta * rejected.detach(), {"kl": kl})
