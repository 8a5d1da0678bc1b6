"""Rules on parallelism: process counts, sharding and offload options, and the enclosing Slurm job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from trainer.config.problems import Problem
from trainer.config.rules.training import Rule

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig


def _distributed_needs_processes(cfg: TrainConfig) -> Problem | None:
    p = cfg.parallelism
    if p.distributed and p.world_size < 2:
        return Problem(
            "parallelism.devices",
            p.devices,
            f"{p.strategy} with one process only adds overhead to single-device training",
            "use parallelism=single, or parallelism.devices>=2",
        )
    return None


def _offload_on_cpu(cfg: TrainConfig) -> Problem | None:
    p = cfg.parallelism
    for key in ("cpu_offload", "offload_optimizer", "offload_params"):
        if getattr(p, key, False) and not cfg.on_gpu:
            return Problem(
                f"parallelism.{key}",
                True,
                "offloading moves state from GPU to CPU memory; this run is on the CPU already",
                f"set parallelism.{key}=false",
            )
    return None


def _param_offload_needs_stage3(cfg: TrainConfig) -> Problem | None:
    p = cfg.parallelism
    if p.strategy == "deepspeed" and p.offload_params and p.stage != 3:
        return Problem(
            "parallelism.offload_params",
            True,
            f"ZeRO stage {p.stage} keeps whole parameters on every rank; only stage 3 can offload them",
            "set parallelism.stage=3, or parallelism.offload_params=false",
        )
    return None


def _deepspeed_clips_two_norm(cfg: TrainConfig) -> Problem | None:
    if cfg.parallelism.strategy == "deepspeed" and cfg.trainer.gradient_clip_norm != 2.0:
        return Problem(
            "trainer.gradient_clip_norm",
            cfg.trainer.gradient_clip_norm,
            "DeepSpeed clips by the 2-norm only",
            "set trainer.gradient_clip_norm=2.0, or use parallelism=fsdp or ddp",
        )
    return None


def _step_timeout_within_init(cfg: TrainConfig) -> Problem | None:
    p = cfg.parallelism
    if p.distributed and p.step_timeout_s is not None and p.step_timeout_s > p.init_timeout_s:
        return Problem(
            "parallelism.step_timeout_s",
            p.step_timeout_s,
            f"longer than parallelism.init_timeout_s={p.init_timeout_s}; the step timeout is meant to "
            "fail hung steps sooner than setup",
            f"use parallelism.step_timeout_s<={p.init_timeout_s}, or null",
        )
    return None


def _quantized_base_not_sharded(cfg: TrainConfig) -> Problem | None:
    p = cfg.parallelism
    if cfg.model.quantize is not None and p.strategy in ("fsdp", "deepspeed"):
        return Problem(
            "parallelism.strategy",
            p.strategy,
            "sharding a bitsandbytes-quantized base is not supported here",
            "use parallelism=ddp (each rank holds the small 4-bit base), or model.quantize=null",
        )
    return None


def _matches_slurm_job(cfg: TrainConfig) -> Iterator[Problem]:
    """Inside a Slurm job, Lightning takes ranks from Slurm: the config must ask for the same layout."""
    hw, p = cfg.hardware, cfg.parallelism
    nodes, per_node = hw.slurm_nodes or 0, hw.slurm_tasks_per_node or 0
    if not nodes or not per_node:
        return
    run_nodes, run_devices = (p.nodes, p.devices) if p.distributed else (1, 1)
    if nodes * per_node > 1 and not p.distributed:
        yield Problem(
            "parallelism.strategy",
            p.strategy,
            f"this Slurm job has {nodes * per_node} tasks ({nodes} node(s) x {per_node}), "
            "but one process trains",
            f"use parallelism=ddp (or fsdp) parallelism.nodes={nodes} parallelism.devices={per_node}",
        )
        return
    if run_nodes != nodes:
        yield Problem(
            "parallelism.nodes",
            run_nodes,
            f"the Slurm job has {nodes} node(s) (SLURM_JOB_NUM_NODES)",
            f"set parallelism.nodes={nodes}, or submit with --nodes={run_nodes}",
        )
    if run_devices != per_node:
        yield Problem(
            "parallelism.devices",
            run_devices,
            f"the Slurm job runs {per_node} task(s) per node (SLURM_NTASKS_PER_NODE)",
            f"set parallelism.devices={per_node}, or submit with --ntasks-per-node={run_devices}",
        )


def _fsdp2_precision(cfg: TrainConfig) -> Problem | None:
    p = cfg.parallelism
    if p.strategy == "fsdp" and p.version == 2 and cfg.precision == "16-mixed":
        return Problem(
            "trainer.precision",
            "16-mixed",
            "FSDP2 (Lightning's ModelParallelStrategy) has no fp16 mixed precision with a loss scaler",
            "use trainer.precision=bf16-mixed or 32, or parallelism.version=1",
        )
    return None


def _bf16_reduce_needs_nccl(cfg: TrainConfig) -> Problem | None:
    p = cfg.parallelism
    if p.strategy == "ddp" and p.reduce_dtype == "bfloat16" and not cfg.on_gpu:
        return Problem(
            "parallelism.reduce_dtype",
            "bfloat16",
            "DDP's bf16 compression hook needs CUDA and NCCL; this run is on the CPU (gloo)",
            "use parallelism.reduce_dtype=float16 or null on the CPU",
        )
    return None


RULES: tuple[Rule, ...] = (
    _fsdp2_precision,
    _bf16_reduce_needs_nccl,
    _distributed_needs_processes,
    _offload_on_cpu,
    _param_offload_needs_stage3,
    _deepspeed_clips_two_norm,
    _step_timeout_within_init,
    _quantized_base_not_sharded,
    _matches_slurm_job,
)
