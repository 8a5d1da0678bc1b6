"""`parallelism:` how the run is spread over devices (tagged union on `strategy`; conf/parallelism/).

Each strategy carries only its own options, so a DeepSpeed option under `strategy: fsdp` is an unknown
key (and the error says which strategy it belongs to) rather than something silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt

from trainer.config.base import StrictModel

Accelerator = Literal["auto", "cpu", "gpu"]
ReduceDtype = Literal["float32", "bfloat16", "float16"]


class SingleDevice(StrictModel):
    strategy: Literal["single"] = Field("single", description="One process on one device.")
    accelerator: Accelerator = Field("auto", description="cpu, gpu, or auto (gpu when CUDA is present).")

    @property
    def world_size(self) -> int:
        return 1

    @property
    def distributed(self) -> bool:
        return False


class _Distributed(StrictModel):
    """What every multi-process strategy shares: placement, timeouts, gradient reduction dtype."""

    accelerator: Accelerator = Field("auto", description="cpu, gpu, or auto (gpu when CUDA is present).")
    devices: PositiveInt = Field(2, description="Processes per node (GPUs, or CPU processes).")
    nodes: PositiveInt = Field(1, description="Number of nodes.")
    init_timeout_s: PositiveInt = Field(
        1800, description="Seconds to wait for process-group setup and the first step's collectives."
    )
    step_timeout_s: PositiveInt | None = Field(
        None,
        description="Collective timeout after the first step (hangs fail fast); null = init_timeout_s.",
    )
    reduce_dtype: ReduceDtype | None = Field(
        None, description="Dtype gradients are all-reduced in; null = the gradients' own dtype."
    )

    @property
    def world_size(self) -> int:
        return self.devices * self.nodes

    @property
    def distributed(self) -> bool:
        return True


class DDP(_Distributed):
    strategy: Literal["ddp"] = Field(
        "ddp", description="Distributed data parallel: one process per device, gradients all-reduced."
    )
    find_unused_parameters: bool = Field(
        False, description="Allow parameters that get no gradient in a step (slower; for odd models)."
    )


class FSDP(_Distributed):
    strategy: Literal["fsdp"] = Field(
        "fsdp", description="Fully sharded data parallel: parameters, gradients, optimizer state sharded."
    )
    version: Literal[1, 2] = Field(
        2, description="2 = FSDP2 (fully_shard per decoder layer; CPU and GPU); 1 = FSDP1 (CUDA only)."
    )
    reshard_after_forward: bool = Field(
        True,
        description="Free gathered parameters after forward (ZeRO-3); false keeps them (ZeRO-2, faster).",
    )
    cpu_offload: bool = Field(False, description="Keep sharded parameters and optimizer state in CPU memory.")
    sharded_checkpoint: bool = Field(
        True, description="Each rank writes its shard (fast, a folder); false gathers one full file."
    )


class DeepSpeed(_Distributed):
    strategy: Literal["deepspeed"] = Field("deepspeed", description="DeepSpeed ZeRO (CUDA only).")
    stage: Literal[1, 2, 3] = Field(
        2, description="ZeRO stage: 1 shards optimizer state, 2 also gradients, 3 also parameters."
    )
    offload_optimizer: bool = Field(False, description="Keep optimizer state (and its step) on the CPU.")
    offload_params: bool = Field(False, description="Keep parameters on the CPU (stage 3 only).")
    overlap_comm: bool = Field(True, description="Overlap gradient reduction with the backward pass.")
    bucket_size: PositiveInt = Field(
        200_000_000, description="Elements per all-gather / reduce bucket (memory vs. fewer collectives)."
    )


ParallelismConfig = Annotated[SingleDevice | DDP | FSDP | DeepSpeed, Field(discriminator="strategy")]
