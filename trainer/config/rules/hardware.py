"""Rules on what this machine can run: CUDA-only features, precisions, device counts, optional packages.

They read the validated `hardware` facts (detected at launch or set by the user), so every rule here is
tested on a CPU machine by stating the facts of a GPU one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainer.config.problems import Problem
from trainer.config.rules.training import Rule

if TYPE_CHECKING:
    from trainer.config.train import TrainConfig


def _has(cfg: TrainConfig, package: str) -> bool:
    return bool((cfg.hardware.packages or {}).get(package))


def _needs(
    cfg: TrainConfig, key: str, value: Any, feature: str, *, cuda: bool, package: str | None, instead: str
) -> Problem | None:
    """The shared shape of "X needs a CUDA GPU" and "X needs package P" (CUDA is checked first)."""
    if cuda and not cfg.on_gpu:
        return Problem(key, value, f"{feature} needs a CUDA GPU; this run is on the CPU", instead)
    if package is not None and not _has(cfg, package):
        pip = package.replace("_", "-")
        return Problem(
            key,
            value,
            f"{feature} needs the {pip} package, which is not installed",
            f"pip install {pip}, or {instead.removeprefix('use ')}",
        )
    return None


def _gpu_without_cuda(cfg: TrainConfig) -> Problem | None:
    submitting = cfg.launcher.kind == "slurm" and not cfg.hardware.slurm_nodes  # rules/launcher.py says it
    if cfg.parallelism.accelerator == "gpu" and not cfg.hardware.cuda and not submitting:
        return Problem(
            "parallelism.accelerator",
            "gpu",
            "no CUDA GPU on this machine (hardware.cuda=false)",
            "use parallelism.accelerator=cpu or auto, or run where a GPU is",
        )
    return None


def _more_devices_than_gpus(cfg: TrainConfig) -> Problem | None:
    p, gpus = cfg.parallelism, cfg.hardware.gpu_count or 0
    if p.distributed and cfg.on_gpu and cfg.hardware.cuda and p.devices > gpus:
        return Problem(
            "parallelism.devices",
            p.devices,
            f"more processes per node than GPUs ({gpus})",
            f"use parallelism.devices<={gpus}, or more parallelism.nodes",
        )
    return None


def _fp16_needs_cuda(cfg: TrainConfig) -> Problem | None:
    if cfg.trainer.precision == "16-mixed" and not cfg.on_gpu:
        return Problem(
            "trainer.precision",
            "16-mixed",
            "fp16 mixed precision needs a CUDA GPU; this run is on the CPU",
            "use trainer.precision=bf16-mixed or 32 on the CPU",
        )
    return None


def _bf16_needs_support(cfg: TrainConfig) -> Problem | None:
    if cfg.trainer.precision.startswith("bf16") and cfg.on_gpu and not cfg.hardware.bf16:
        return Problem(
            "trainer.precision",
            cfg.trainer.precision,
            "these GPUs do not support bfloat16 (hardware.bf16=false)",
            "use trainer.precision=16-mixed or 32 (or auto)",
        )
    return None


def _eight_bit_optimizer(cfg: TrainConfig) -> Problem | None:
    if cfg.optimizer.name != "adamw8bit":
        return None
    return _needs(
        cfg, "optimizer.name", "adamw8bit", "bitsandbytes' 8-bit AdamW",
        cuda=True, package="bitsandbytes", instead="use optimizer=adamw",
    )  # fmt: skip


def _lion_needs_package(cfg: TrainConfig) -> Problem | None:
    if cfg.optimizer.name != "lion":
        return None
    return _needs(
        cfg,
        "optimizer.name",
        "lion",
        "Lion",
        cuda=False,
        package="lion_pytorch",
        instead="use optimizer=adamw",
    )


def _fused_adamw_needs_cuda(cfg: TrainConfig) -> Problem | None:
    if getattr(cfg.optimizer, "fused", None) and not cfg.on_gpu:
        return Problem(
            "optimizer.fused",
            True,
            "the fused AdamW kernel is used on CUDA GPUs only here",
            "set optimizer.fused=null (fused on GPU) or false",
        )
    return None


def _flash_attention(cfg: TrainConfig) -> Problem | None:
    if cfg.model.attn_implementation != "flash_attention_2":
        return None
    return _needs(
        cfg, "model.attn_implementation", "flash_attention_2", "flash-attn",
        cuda=True, package="flash_attn", instead="use model.attn_implementation=sdpa",
    )  # fmt: skip


def _flex_attention_trains_on_cuda(cfg: TrainConfig) -> Problem | None:
    """torch's FlexAttention has a forward on the CPU but no backward ("does not support backward on CPU")."""
    if cfg.model.attn_implementation != "flex_attention":
        return None
    return _needs(
        cfg, "model.attn_implementation", "flex_attention", "training with FlexAttention (its backward)",
        cuda=True, package=None, instead="use model.attn_implementation=sdpa (it masks packed documents too)",
    )  # fmt: skip


def _quantization(cfg: TrainConfig) -> Problem | None:
    if cfg.model.quantize is None:
        return None
    return _needs(
        cfg, "model.quantize", cfg.model.quantize, "bitsandbytes quantization",
        cuda=True, package="bitsandbytes", instead="use model.quantize=null with peft=lora",
    )  # fmt: skip


def _fsdp1_needs_cuda(cfg: TrainConfig) -> Problem | None:
    p = cfg.parallelism
    if p.strategy == "fsdp" and p.version == 1:
        return _needs(
            cfg, "parallelism.version", 1, "FSDP1 (Lightning's FSDPStrategy)",
            cuda=True, package=None, instead="use parallelism.version=2 (FSDP2 runs on the CPU too)",
        )  # fmt: skip
    return None


def _deepspeed_needs_cuda(cfg: TrainConfig) -> Problem | None:
    if cfg.parallelism.strategy != "deepspeed":
        return None
    return _needs(
        cfg, "parallelism.strategy", "deepspeed", "Lightning's DeepSpeed strategy",
        cuda=True, package="deepspeed", instead="use parallelism=fsdp (FSDP2 runs on the CPU too)",
    )  # fmt: skip


def _threads_fit_the_cores(cfg: TrainConfig) -> Problem | None:
    """More threads than cores per process only makes them wait for each other."""
    threads, cores = cfg.trainer.threads, cfg.hardware.cpu_cores
    per_node = cfg.parallelism.devices if cfg.parallelism.distributed else 1
    if not isinstance(threads, int) or cores is None or threads * per_node <= cores:
        return None
    most = max(1, cores // per_node)
    return Problem(
        "trainer.threads",
        threads,
        f"{threads} thread(s) x {per_node} process(es) per node is more than the {cores} CPU cores here",
        f"use trainer.threads<={most} or trainer.threads=auto",
    )


RULES: tuple[Rule, ...] = (
    _gpu_without_cuda,
    _threads_fit_the_cores,
    _more_devices_than_gpus,
    _fp16_needs_cuda,
    _bf16_needs_support,
    _eight_bit_optimizer,
    _lion_needs_package,
    _fused_adamw_needs_cuda,
    _flash_attention,
    _flex_attention_trains_on_cuda,
    _quantization,
    _fsdp1_needs_cuda,
    _deepspeed_needs_cuda,
)
