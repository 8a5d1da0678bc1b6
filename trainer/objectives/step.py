"""One step of a preference objective on a batch: forward the policy (and the reference), score each
sequence, take the loss, and say what to log.

Batch layouts (trainer/data/collate.py): a pair batch holds the P chosen sequences in rows 0..P-1 and the
P rejected ones in rows P..2P-1, so the policy runs ONE forward over both halves (as the reference
does); a KTO batch holds its B examples in rows 0..B-1 and B rows pairing each prompt with another
example's completion after them, whose log-ratio estimates KTO's KL term (without gradient).

Every metric is returned as a (mean, count) pair, so a metric over many micro batches or validation
batches is the mean over all pairs (or examples), whatever the batch sizes.
"""

from __future__ import annotations

from typing import Any

import torch

from trainer.objectives import losses
from trainer.objectives.losses import ObjectiveOutput, SequenceScores, score_sequences
from trainer.objectives.reference import Forward, Reference

Batch = dict[str, torch.Tensor]
Stat = tuple[torch.Tensor, torch.Tensor]  # (mean, how many it averages)
ROW_KEYS = ("input_ids", "attention_mask", "position_ids", "labels")


def rows(batch: Batch, part: slice) -> Batch:
    """The batch restricted to some rows (the tensors the model and the scoring read)."""
    return {k: batch[k][part] for k in ROW_KEYS if k in batch}


def _stat(values: torch.Tensor) -> Stat:
    n = torch.tensor(float(values.numel()), device=values.device)
    mean = values.float().mean() if values.numel() else torch.zeros((), device=values.device)
    return mean.detach(), n


class PreferenceStep:
    """The objective of `objective:` (not sft) with its reference (None for ORPO and SimPO)."""

    def __init__(self, cfg: Any, reference: Reference | None) -> None:
        self.cfg = cfg
        self.reference = reference

    def _scores(self, forward: Forward, batch: Batch) -> SequenceScores:
        return score_sequences(forward(batch), batch["labels"])

    def __call__(self, policy: Forward, batch: Batch) -> tuple[torch.Tensor, dict[str, Stat]]:
        """The loss to backpropagate, and the metrics of this batch."""
        if self.cfg.method == "kto":
            return self._kto(policy, batch)
        pairs = batch["input_ids"].size(0) // 2
        chosen, rejected = slice(0, pairs), slice(pairs, 2 * pairs)
        scores = self._scores(policy, batch)
        pc, pr = scores.take(chosen), scores.take(rejected)
        method = self.cfg.method
        if method == "dpo":
            assert self.reference is not None
            ref = self.reference.scores(policy, batch)
            out = losses.dpo_loss(
                pc,
                pr,
                ref.take(chosen),
                ref.take(rejected),
                beta=self.cfg.beta,
                label_smoothing=self.cfg.label_smoothing,
                loss_type=self.cfg.loss,
            )
        elif method == "orpo":
            out = losses.orpo_loss(pc, pr, beta=self.cfg.beta)
        elif method == "simpo":
            out = losses.simpo_loss(
                pc,
                pr,
                beta=self.cfg.beta,
                gamma_beta_ratio=self.cfg.gamma_beta_ratio,
                label_smoothing=self.cfg.label_smoothing,
            )
        else:
            raise ValueError(f"not a pair objective: {method}")
        stats = self._reward_stats(out)
        margins = out.chosen_rewards - out.rejected_rewards
        stats["rewards/margins"] = _stat(margins)
        stats["rewards/accuracy"] = _stat((margins > 0).float())
        stats["logps/chosen"] = _stat(pc.logps.detach())
        stats["logps/rejected"] = _stat(pr.logps.detach())
        stats["loss"] = (out.loss.detach(), torch.tensor(float(pairs), device=out.loss.device))
        return out.loss, stats

    def _kto(self, policy: Forward, batch: Batch) -> tuple[torch.Tensor, dict[str, Stat]]:
        assert self.reference is not None
        n = batch["input_ids"].size(0) // 2
        examples, mismatched = rows(batch, slice(0, n)), rows(batch, slice(n, 2 * n))
        desirable = batch["desirable"].bool()
        policy_scores = self._scores(policy, examples)
        with torch.no_grad():
            policy_kl = self._scores(policy, mismatched)
        ref_both = self.reference.scores(policy, batch)
        out = losses.kto_loss(
            policy_scores,
            ref_both.take(slice(0, n)),
            desirable,
            policy_kl,
            ref_both.take(slice(n, 2 * n)),
            beta=self.cfg.beta,
            desirable_weight=self.cfg.desirable_weight,
            undesirable_weight=self.cfg.undesirable_weight,
            reduce=_mean_over_ranks,
        )
        stats = self._reward_stats(out)
        if out.chosen_rewards.numel() and out.rejected_rewards.numel():
            margin = out.chosen_rewards.mean() - out.rejected_rewards.mean()
            stats["rewards/margins"] = (margin, torch.ones((), device=margin.device))
        stats["logps/chosen"] = _stat(policy_scores.logps[desirable].detach())
        stats["logps/rejected"] = _stat(policy_scores.logps[~desirable].detach())
        stats["loss"] = (out.loss.detach(), torch.tensor(float(n), device=out.loss.device))
        return out.loss, stats

    @staticmethod
    def _reward_stats(out: ObjectiveOutput) -> dict[str, Stat]:
        stats = {
            "rewards/chosen": _stat(out.chosen_rewards),
            "rewards/rejected": _stat(out.rejected_rewards),
        }
        for name, value in out.extra.items():
            stats[name] = (value.detach().float(), torch.ones((), device=value.device))
        return stats


def _mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """KTO's KL estimate averaged over data-parallel ranks, as every rank must use the same one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        value = value.detach().clone()
        torch.distributed.all_reduce(value)
        value /= torch.distributed.get_world_size()
    return value
