"""`TrainConfig`: the whole validated run, composed from every group, plus the derived batch arithmetic."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import Field, ValidationError

from trainer.config import rules
from trainer.config.base import StrictModel
from trainer.config.data import DataConfig
from trainer.config.dataset import DatasetConfig
from trainer.config.gc import GcConfig
from trainer.config.hardware import HardwareFacts
from trainer.config.infer import InferConfig
from trainer.config.launcher import LauncherConfig
from trainer.config.loop import LoopConfig
from trainer.config.model import ModelConfig
from trainer.config.objective import ObjectiveConfig, SftObjective
from trainer.config.optimizer import OptimizerConfig
from trainer.config.parallelism import ParallelismConfig
from trainer.config.peft import PeftConfig
from trainer.config.problems import Problem, UnionFields, from_validation_error
from trainer.config.profiler import ProfilerConfig
from trainer.config.run import RunConfig
from trainer.config.scheduler import SchedulerConfig
from trainer.config.tracker import TrackerConfig


class TrainConfig(StrictModel):
    run: RunConfig = Field(description="Where the run lives, how it is named, its seed and tags.")
    model: ModelConfig = Field(description="Which model to train: loaded from the hub or a folder, or built.")
    data: DataConfig = Field(description="What to train on and how batches are formed.")
    objective: ObjectiveConfig = Field(
        default_factory=SftObjective,
        description="What training optimises: sft (next-token loss) or a preference objective.",
    )
    optimizer: OptimizerConfig = Field(description="The optimizer and its hyperparameters.")
    scheduler: SchedulerConfig = Field(description="The learning-rate schedule, with warmup.")
    parallelism: ParallelismConfig = Field(description="How the run is spread over devices and nodes.")
    peft: PeftConfig = Field(description="Full fine-tuning or parameter-efficient fine-tuning (LoRA).")
    tracker: TrackerConfig = Field(description="Where metrics, params and artifacts are tracked.")
    launcher: LauncherConfig = Field(description="Where the run goes: this machine, or a Slurm cluster.")
    trainer: LoopConfig = Field(
        description="The training loop: length, evaluation, logging, checkpoints, precision."
    )
    gc: GcConfig = Field(default_factory=GcConfig, description="When Python's garbage collector runs.")
    profiler: ProfilerConfig = Field(
        default_factory=ProfilerConfig, description="PyTorch profiler windows and CUDA memory snapshots."
    )
    infer: InferConfig = Field(
        default_factory=InferConfig,
        description="What the generate, chat, evaluate and merge commands read; training ignores it.",
    )
    hardware: HardwareFacts = Field(
        default_factory=HardwareFacts,
        description="Machine facts that validation depends on; null = detected at launch.",
    )

    @property
    def on_gpu(self) -> bool:
        """Whether the run uses CUDA: accelerator gpu, or auto on a machine with CUDA."""
        acc = self.parallelism.accelerator
        return acc == "gpu" or (acc == "auto" and bool(self.hardware.cuda))

    @property
    def precision(self) -> str:
        """`trainer.precision`, with `auto` made concrete: bf16-mixed on GPUs with bf16, else 32."""
        if self.trainer.precision != "auto":
            return self.trainer.precision
        return "bf16-mixed" if self.on_gpu and self.hardware.bf16 else "32"

    @property
    def grad_accum(self) -> int:
        """global batch = micro batch x accumulation x data-parallel ranks (checked by rules)."""
        return self.data.global_batch // (self.data.micro_batch * self.parallelism.world_size)


class ConfigError(Exception):
    """Raised with every problem found, so the user fixes them all in one round."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} config problem(s)")
        self.problems = problems


def _variants(info: Any) -> dict[str, frozenset[str]]:
    return {
        v.model_fields[info.discriminator].default: frozenset(v.model_fields)
        for v in get_args(info.annotation)
    }


def _union_fields() -> UnionFields:
    """Tagged unions by key pattern: the top-level groups, and each dataset's `format` (`*` = any name)."""
    unions: UnionFields = {
        name: _variants(info) for name, info in TrainConfig.model_fields.items() if info.discriminator
    }
    fmt = _variants(DatasetConfig.model_fields["format"])
    unions["data.datasets.*.format"] = unions["data.validation.*.format"] = fmt
    return unions


def validate(data: dict[str, Any], purpose: str = "training") -> TrainConfig:
    """The one validation boundary: plain dict in, frozen TrainConfig out, or ConfigError. `purpose`:
    "training" runs every rule; "inference" those that matter to using a trained model (rules/)."""
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(from_validation_error(err, _union_fields())) from None
    problems = rules.check(cfg, purpose)
    if problems:
        raise ConfigError(problems)
    return cfg
