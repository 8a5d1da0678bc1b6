"""`objective:` what training optimises (tagged union on `method`, mirrors conf/objective/).

`sft` is next-token loss on the trained tokens of each example (the default). The others are preference
objectives: they read preference data (pairs of a chosen and a rejected response, or KTO's single
responses marked desirable or not) and push the model toward the preferred response. DPO, IPO and KTO
compare the policy with a frozen reference model; ORPO and SimPO need none. Each method carries only
its own keys, so `objective.beta` under `objective=sft` is a named mistake, not a silent no-op.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat

from trainer.config.base import StrictModel

# How a reference-based objective gets its reference log-probs:
# adapters_off: the policy itself with its LoRA adapters disabled (no second copy; needs peft),
# copy: a frozen copy of the starting model (full fine-tuning), precomputed: the starting model's log-probs
# of every pair, computed in one pass before the first step (no second copy), auto: adapters_off with
# peft, else copy.
Reference = Literal["auto", "adapters_off", "copy", "precomputed"]
REFERENCE_HELP = (
    "How the frozen reference is computed: adapters_off = the policy with its LoRA adapters disabled (no "
    "second copy in memory; needs peft), copy = a frozen copy of the starting weights, precomputed = the "
    "starting model's log-probs of every pair, one pass before the first step (no copy; kept in "
    "checkpoints), auto = adapters_off under peft, else copy."
)


class SftObjective(StrictModel):
    method: Literal["sft"] = Field(
        "sft", description="Supervised fine-tuning: next-token loss on the trained tokens of each example."
    )


class DpoObjective(StrictModel):
    method: Literal["dpo"] = Field(
        "dpo", description="DPO on (prompt, chosen, rejected) pairs against a frozen reference model."
    )
    loss: Literal["sigmoid", "ipo"] = Field(
        "sigmoid",
        description="sigmoid: DPO's logistic loss (Rafailov et al. 2023); ipo: IPO's squared loss on the "
        "length-averaged log-ratio margin (Azar et al. 2023).",
    )
    beta: PositiveFloat = Field(
        0.1, description="Strength of the pull toward the reference (DPO's beta; IPO's tau)."
    )
    label_smoothing: float = Field(
        0.0, ge=0, lt=0.5, description="sigmoid loss: assumed fraction of flipped preference labels (cDPO)."
    )
    reference: Reference = Field("auto", description=REFERENCE_HELP)


class OrpoObjective(StrictModel):
    method: Literal["orpo"] = Field(
        "orpo",
        description="ORPO: NLL of the chosen response plus an odds-ratio penalty; no reference model.",
    )
    beta: PositiveFloat = Field(0.1, description="Weight of the odds-ratio term (ORPO's lambda).")


class SimpoObjective(StrictModel):
    method: Literal["simpo"] = Field(
        "simpo", description="SimPO: length-normalised log-probs as rewards with a margin; no reference."
    )
    beta: PositiveFloat = Field(2.0, description="Scale of the length-normalised reward.")
    gamma_beta_ratio: float = Field(
        0.5, ge=0, description="Target reward margin, as a fraction of beta (gamma = beta x ratio)."
    )
    label_smoothing: float = Field(
        0.0, ge=0, lt=0.5, description="Assumed fraction of flipped preference labels."
    )


class KtoObjective(StrictModel):
    method: Literal["kto"] = Field(
        "kto",
        description="KTO on single responses marked desirable or undesirable, against a frozen reference.",
    )
    beta: PositiveFloat = Field(0.1, description="Scale of the log-ratio reward.")
    desirable_weight: PositiveFloat = Field(1.0, description="Weight of the desirable examples' loss.")
    undesirable_weight: PositiveFloat = Field(1.0, description="Weight of the undesirable examples' loss.")
    reference: Reference = Field("auto", description=REFERENCE_HELP)


ObjectiveConfig = Annotated[
    SftObjective | DpoObjective | OrpoObjective | SimpoObjective | KtoObjective,
    Field(discriminator="method"),
]

# What data each objective reads (DataConfig.kind).
DATA_KIND = {"sft": "sft", "dpo": "preference", "orpo": "preference", "simpo": "preference", "kto": "kto"}
PREFERENCE_METHODS = ("dpo", "orpo", "simpo", "kto")


def uses_reference(objective: StrictModel) -> bool:
    """Whether the objective compares with a frozen reference model (DPO, IPO, KTO)."""
    return hasattr(objective, "reference")


def reference_kind(objective: StrictModel, peft_method: str) -> str | None:
    """adapters_off | copy for objectives with a reference (auto made concrete), None otherwise."""
    if not uses_reference(objective):
        return None
    chosen = objective.reference  # type: ignore[attr-defined]
    if chosen == "auto":
        return "copy" if peft_method == "none" else "adapters_off"
    return chosen
