"""`parallelism=fsdp` (version 2): torch's `fully_shard` per decoder layer under Lightning's
ModelParallelStrategy (data parallel only). Runs on CPU (gloo) and GPU.

Lightning requires the `fully_shard` calls to happen as the model is built, in `configure_model`, on
the device mesh it made: that is `wrap_model`.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from trainer.models.dtypes import DTYPES
from trainer.parallel.atomic import whole_saves
from trainer.parallel.base import Distributed
from trainer.parallel.layers import decoder_layers, strip_module_prefix


def shard_model(model: torch.nn.Module, mesh: Any, p: Any) -> None:
    """`fully_shard` each decoder layer, then the root (embeddings, final norm, head).

    A unit per layer means only one layer's full parameters are gathered at a time. Layers are sharded
    innermost first, as `fully_shard` requires of nested units.
    """
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    options = {
        "mesh": mesh,
        "reshard_after_forward": p.reshard_after_forward,
        # Only the reduction dtype: compute precision is Lightning's (autocast for *-mixed).
        "mp_policy": MixedPrecisionPolicy(reduce_dtype=DTYPES[p.reduce_dtype] if p.reduce_dtype else None),
        "offload_policy": CPUOffloadPolicy() if p.cpu_offload else OffloadPolicy(),
    }
    for layer in reversed(decoder_layers(model)):
        fully_shard(layer, **options)
    fully_shard(model, **options)


def gathered_state_dict(root: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every rank takes part; rank 0 gets the full tensors on its CPU (FSDP1 and FSDP2 alike)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return strip_module_prefix(get_model_state_dict(root, options=options))


class Fsdp2(Distributed):
    def strategy(self) -> Any:
        from lightning.pytorch.strategies import ModelParallelStrategy

        # Lightning builds a (data_parallel, tensor_parallel) mesh whose product must be the world size,
        # so pure FSDP2 is data_parallel = every process on every node.
        return whole_saves(ModelParallelStrategy)(
            data_parallel_size=self.p.world_size,
            tensor_parallel_size=1,
            save_distributed_checkpoint=self.p.sharded_checkpoint,
            timeout=self.timeout,
        )

    def wrap_model(self, model: torch.nn.Module, module: L.LightningModule) -> torch.nn.Module:
        shard_model(model, module.device_mesh["data_parallel"], self.p)
        return model

    def full_state_dict(self, trainer: L.Trainer) -> dict[str, torch.Tensor] | None:
        return gathered_state_dict(trainer.strategy.model)

    @property
    def checkpoint_keeps_every_key(self) -> bool:
        return self.p.sharded_checkpoint
