"""`parallelism=fsdp parallelism.version=1`: Lightning's FSDPStrategy (CUDA only), one FSDP unit per
decoder layer.

FSDP1 flattens parameters, so only its root module can compute the gradient norm, and its mixed
precision policy is Lightning's own with only the reduce dtype changed.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn
from torch.distributed.fsdp.wrap import CustomPolicy

from trainer.models.dtypes import DTYPES, compute_dtype
from trainer.parallel.atomic import whole_saves
from trainer.parallel.base import Distributed, no_clip_limit, unscale_fused_amp
from trainer.parallel.fsdp2 import gathered_state_dict
from trainer.parallel.layers import decoder_layers


class DecoderLayerWrapPolicy(CustomPolicy):
    """Auto-wrap policy: one FSDP unit per decoder layer, the rest in the root unit.

    The strategy is built before the model exists, so the layers are looked up when FSDP applies the
    policy to the root module rather than named up front.
    """

    def __init__(self) -> None:
        super().__init__(lambda module: False)

    def _run_policy(
        self, root_module: nn.Module, ignored_modules: set[nn.Module], root_kwargs: dict[str, Any]
    ) -> dict[nn.Module, dict[str, Any]]:
        layers = set(decoder_layers(root_module))
        self._lambda_fn = layers.__contains__
        return super()._run_policy(root_module, ignored_modules, root_kwargs)


class Fsdp1(Distributed):
    def _mixed_precision(self) -> Any:
        """Lightning's policy for the precision (FSDPPrecision), with only the reduce dtype changed:
        passing `mixed_precision` replaces that policy whole."""
        from torch.distributed.fsdp import MixedPrecision

        compute = compute_dtype(self.cfg.precision)
        return MixedPrecision(
            param_dtype=compute, reduce_dtype=DTYPES[self.p.reduce_dtype], buffer_dtype=compute
        )

    def strategy(self) -> Any:
        from lightning.pytorch.strategies import FSDPStrategy

        return whole_saves(FSDPStrategy)(
            auto_wrap_policy=DecoderLayerWrapPolicy(),
            cpu_offload=self.p.cpu_offload,
            sharding_strategy="FULL_SHARD" if self.p.reshard_after_forward else "SHARD_GRAD_OP",
            mixed_precision=self._mixed_precision() if self.p.reduce_dtype else None,
            state_dict_type="sharded" if self.p.sharded_checkpoint else "full",
            timeout=self.timeout,
        )

    def clip_gradients(
        self, trainer: L.Trainer, optimizer: torch.optim.Optimizer, max_norm: float | None, norm_type: float
    ) -> torch.Tensor | None:
        """The root FSDP module computes the norm over the flat shards (a collective) and clips."""
        unscale_fused_amp(trainer, optimizer)
        return trainer.strategy.model.clip_grad_norm_(no_clip_limit(max_norm), norm_type)

    def full_state_dict(self, trainer: L.Trainer) -> dict[str, torch.Tensor] | None:
        # The strategy's root (FSDP1 wraps the LightningModule itself), so FSDP1 units unshard too.
        return gathered_state_dict(trainer.strategy.model)

    @property
    def checkpoint_keeps_every_key(self) -> bool:
        return self.p.sharded_checkpoint
