"""`optimizer:` which optimizer and its hyperparameters (tagged union on `name`; conf/optimizer/)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from trainer.config.base import StrictModel


class _Common(StrictModel):
    lr: float = Field(2e-3, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(
        0.01, ge=0, description="Decoupled weight decay (not applied to norms/biases)."
    )


class AdamWConfig(_Common):
    name: Literal["adamw"] = Field("adamw", description="torch.optim.AdamW.")
    betas: tuple[float, float] = Field((0.9, 0.95), description="Adam beta1, beta2.")
    eps: float = Field(1e-8, gt=0, description="Adam epsilon.")
    fused: bool | None = Field(None, description="Fused CUDA kernel; null = fused when training on a GPU.")

    @property
    def state_bytes_per_param(self) -> int:
        return 8  # exp_avg + exp_avg_sq in fp32


class AdamW8bitConfig(_Common):
    name: Literal["adamw8bit"] = Field("adamw8bit", description="bitsandbytes AdamW8bit (CUDA only).")
    betas: tuple[float, float] = Field((0.9, 0.95), description="Adam beta1, beta2.")
    eps: float = Field(1e-8, gt=0, description="Adam epsilon.")

    @property
    def state_bytes_per_param(self) -> int:
        return 2  # two 8-bit moments (block-wise quantisation constants are negligible)


class SGDConfig(_Common):
    name: Literal["sgd"] = Field("sgd", description="torch.optim.SGD.")
    momentum: float = Field(0.9, ge=0, lt=1, description="Momentum factor; 0 = plain SGD.")
    nesterov: bool = Field(False, description="Nesterov momentum (needs momentum > 0).")

    @property
    def state_bytes_per_param(self) -> int:
        return 4 if self.momentum else 0


class AdafactorConfig(_Common):
    name: Literal["adafactor"] = Field("adafactor", description="transformers' Adafactor (factored moments).")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay (not applied to norms/biases).")

    @property
    def state_bytes_per_param(self) -> int:
        return 0  # row + column factors: O(rows + cols), negligible per parameter


class LionConfig(_Common):
    name: Literal["lion"] = Field("lion", description="Lion (sign momentum; the lion-pytorch package).")
    lr: float = Field(3e-4, gt=0, description="Peak learning rate (Lion wants ~3-10x less than AdamW).")
    betas: tuple[float, float] = Field((0.9, 0.99), description="Lion beta1 (update), beta2 (momentum).")
    weight_decay: float = Field(
        0.1, ge=0, description="Decoupled weight decay (not applied to norms/biases)."
    )

    @property
    def state_bytes_per_param(self) -> int:
        return 4  # one fp32 momentum


OptimizerConfig = Annotated[
    AdamWConfig | AdamW8bitConfig | SGDConfig | AdafactorConfig | LionConfig, Field(discriminator="name")
]
