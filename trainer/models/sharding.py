"""FSDP for Hugging Face models: which modules become shard units, FSDP2 `fully_shard`, and gradient
norms that are right when gradients are sharded.

Decoder layers are found by the class names a transformers model lists in `_no_split_modules` (the
blocks that must stay whole on one device: the same list accelerate wraps by). Searching every submodule
for that list sees through wrappers, so a PEFT `PeftModel` or a `LightningModule` around the model is
handled without knowing their attribute paths.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.distributed.fsdp.wrap import CustomPolicy

from trainer.config.parallelism import FSDP

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The model's repeated blocks (e.g. every `LlamaDecoderLayer`), outermost first."""
    names: set[str] = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(
            f"found no decoder layers to shard in {type(model).__name__}: no submodule is one of the classes "
            f"listed in `_no_split_modules` ({sorted(names) or 'none listed'})"
        )
    return layers


class DecoderLayerWrapPolicy(CustomPolicy):
    """FSDP1 auto-wrap policy: one FSDP unit per decoder layer, the rest in the root unit.

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


def shard_model(model: nn.Module, mesh: Any, p: FSDP) -> None:
    """FSDP2: `fully_shard` each decoder layer, then the root (embeddings, final norm, head).

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


def _full_value(norm: torch.Tensor) -> torch.Tensor:
    """FSDP2's norm is a DTensor holding per-rank partial norms; `full_tensor` reduces them."""
    full = getattr(norm, "full_tensor", None)
    return full() if full is not None else norm


def grad_norm(
    optimizer: torch.optim.Optimizer, max_norm: float | None, norm_type: float, fsdp1_root: Any = None
) -> torch.Tensor:
    """The total gradient norm before clipping, clipping to `max_norm` when it is set.

    Replicated (DDP, single) and FSDP2 gradients go through torch's `clip_grad_norm_`, which reduces
    DTensor norms over the mesh. FSDP1 flattens parameters, so only its root module can compute the norm
    (`fsdp1_root.clip_grad_norm_`, a collective).
    """
    if fsdp1_root is not None:
        return fsdp1_root.clip_grad_norm_(max_norm if max_norm is not None else math.inf, norm_type)
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if max_norm is None:
        norm = torch.nn.utils.get_total_norm([p.grad for p in params], norm_type)
    else:
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    return _full_value(norm)
