"""Training objectives beyond next-token prediction: the preference losses (DPO, IPO, ORPO, SimPO, KTO).

`losses` holds them as pure functions over per-sequence log-probabilities, with no Lightning and no
config, so each one can be checked on hand-built tensors and against a reference implementation.
"""

from trainer.objectives.losses import (
    ObjectiveOutput,
    SequenceScores,
    dpo_loss,
    kto_loss,
    orpo_loss,
    score_sequences,
    simpo_loss,
)

__all__ = [
    "ObjectiveOutput",
    "SequenceScores",
    "dpo_loss",
    "kto_loss",
    "orpo_loss",
    "score_sequences",
    "simpo_loss",
]
