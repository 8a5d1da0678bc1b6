"""`parallelism:` how the run is spread over devices (tagged union on `strategy`; conf/parallelism/)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt

from trainer.config.base import StrictModel

Accelerator = Literal["auto", "cpu", "gpu"]


class SingleDevice(StrictModel):
    strategy: Literal["single"] = Field("single", description="One process on one device.")
    accelerator: Accelerator = Field("auto", description="cpu, gpu, or auto (gpu when CUDA is present).")

    @property
    def world_size(self) -> int:
        return 1


class DDP(StrictModel):
    strategy: Literal["ddp"] = Field(
        "ddp", description="Distributed data parallel: one process per device, gradients all-reduced."
    )
    accelerator: Accelerator = Field("auto", description="cpu, gpu, or auto (gpu when CUDA is present).")
    devices: PositiveInt = Field(2, description="Processes per node (GPUs, or CPU processes).")
    nodes: PositiveInt = Field(1, description="Number of nodes.")

    @property
    def world_size(self) -> int:
        return self.devices * self.nodes


ParallelismConfig = Annotated[SingleDevice | DDP, Field(discriminator="strategy")]
