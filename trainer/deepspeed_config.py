"""The DeepSpeed JSON config for `parallelism: deepspeed`, as a pure function of the validated config.

Kept apart from the Lightning strategy so that the exact dict can be fed to a raw `deepspeed.initialize`
on a CPU machine (tests/test_strategies.py): Lightning's DeepSpeedStrategy refuses CPUs, so that is the
only way the config itself is exercised without a GPU.
"""

from __future__ import annotations

from typing import Any

from trainer.config import TrainConfig

# DeepSpeed's names for `communication_data_type` (deepspeed/runtime/config.py).
COMM_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}

# Lightning's own fp16 defaults (DeepSpeedStrategy.__init__): dynamic loss scaling from 2**16.
FP16_LOSS_SCALING = {
    "loss_scale": 0,
    "initial_scale_power": 16,
    "loss_scale_window": 1000,
    "hysteresis": 2,
    "min_loss_scale": 1,
}


def _zero_section(cfg: TrainConfig) -> dict[str, Any]:
    p = cfg.parallelism
    zero: dict[str, Any] = {
        "stage": p.stage,
        "overlap_comm": p.overlap_comm,
        "contiguous_gradients": True,
        "allgather_partitions": True,
        "reduce_scatter": True,
        "allgather_bucket_size": p.bucket_size,
        "reduce_bucket_size": p.bucket_size,
    }
    if p.stage == 3:
        # Stage 3 gathers parameters layer by layer ahead of use; `allgather_bucket_size` is stage 1/2 only.
        zero["stage3_prefetch_bucket_size"] = p.bucket_size
    if p.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if p.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return zero


def _precision_sections(precision: str) -> dict[str, Any]:
    """DeepSpeed runs its own mixed precision: the module is cast and an fp32 master copy kept."""
    if precision.startswith("bf16"):
        return {"bf16": {"enabled": True}}
    if precision.startswith("16"):
        return {"fp16": {"enabled": True, **FP16_LOSS_SCALING}}
    return {}


def deepspeed_config(cfg: TrainConfig) -> dict[str, Any]:
    """The whole config; `cfg.parallelism` must be the DeepSpeed variant.

    `gradient_accumulation_steps` is included so that the dict stands alone for `deepspeed.initialize`;
    Lightning insists on setting it itself (from `accumulate_grad_batches`), so the strategy drops it.
    """
    p = cfg.parallelism
    if p.strategy != "deepspeed":
        raise ValueError(f"deepspeed_config needs parallelism.strategy=deepspeed, got {p.strategy}")
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": cfg.data.micro_batch,
        "gradient_accumulation_steps": cfg.grad_accum,
        # DeepSpeed clips by the global 2-norm itself (the rules reject any other norm type); 0 = off.
        "gradient_clipping": cfg.trainer.gradient_clip or 0.0,
        "zero_optimization": _zero_section(cfg),
        # The optimizer is ours (trainer/models/optim.py), a plain torch one, not a DeepSpeed-built one.
        "zero_allow_untested_optimizer": True,
        **_precision_sections(cfg.precision),
    }
    if p.offload_optimizer:
        # DeepSpeed otherwise refuses a client optimizer with ZeRO-Offload (it wants DeepSpeedCPUAdam).
        config["zero_force_ds_cpu_optimizer"] = False
    if p.reduce_dtype is not None:
        config["communication_data_type"] = COMM_DTYPES[p.reduce_dtype]
    return config
