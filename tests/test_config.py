"""Composition of every conf/ option, the validation boundary, and the rules' messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import CONF, compose_dict, load_config
from trainer.boundary import from_composed
from trainer.config import ConfigError, validate


def _same_values(written: object, validated: object, where: str) -> None:
    """Every value a YAML file writes is the value validation produced (interpolations aside)."""
    if isinstance(written, dict):
        assert isinstance(validated, dict), where
        for key, value in written.items():
            if key not in ("defaults", "hydra"):  # Hydra's own settings are not validated
                _same_values(value, validated[key], f"{where}.{key}")
    elif not (isinstance(written, str) and ("${" in written or written == "???")):  # set by the test
        expected = list(written) if isinstance(written, tuple) else written
        got = list(validated) if isinstance(validated, tuple) else validated
        assert got == expected or str(got) == str(expected), f"{where}: {got!r} != {written!r}"


def problems_of(overrides: list[str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(overrides)
    return [p.render() for p in info.value.problems]


def test_default_config_validates_with_derived_batch_arithmetic() -> None:
    cfg = load_config()
    assert cfg.model.from_scratch and cfg.model.architecture is not None
    assert cfg.data.global_batch == cfg.data.micro_batch * cfg.grad_accum * cfg.parallelism.world_size
    assert cfg.tracker.kind == "mlflow" and cfg.peft.method == "none"


@pytest.mark.parametrize(
    "group,option",
    [(p.parent.name, p.stem) for p in sorted(CONF.glob("*/*.yaml")) if p.parent.name not in {"hydra"}],
)
def test_every_group_option_composes_and_validates(group: str, option: str, tmp_path: Path) -> None:
    overrides = [f"{group}={option}"]
    # Objectives and data come in matching kinds (pairs for DPO, ORPO, SimPO; labelled examples for KTO).
    pairs = {("data", "tiny_prefs"): "objective=dpo", ("data", "tiny_kto"): "objective=kto"}
    pairs |= {("objective", m): "data=tiny_prefs" for m in ("dpo", "orpo", "simpo")}
    pairs[("objective", "kto")] = "data=tiny_kto"
    if (group, option) in pairs:
        overrides.append(pairs[(group, option)])
    if (group, option) == ("model", "folder"):  # a model folder of one's own (an earlier run's export)
        (tmp_path / "config.json").write_text('{"model_type": "llama"}')
        overrides.append(f"model.name_or_path={tmp_path}")
    gpu = ["hardware.cuda=true", "hardware.gpu_count=2", "hardware.bf16=true"]
    if group == "parallelism" and option != "single":
        overrides.append("data.global_batch=64")
    # CUDA-only options: the machine is stated as facts, so they are checked on any machine.
    if (group, option) == ("parallelism", "deepspeed"):
        overrides += [*gpu, "hardware.packages={deepspeed:true}"]
    if (group, option) == ("optimizer", "adamw8bit"):
        overrides += [*gpu, "hardware.packages={bitsandbytes:true}"]
    if (group, option) == ("optimizer", "lion"):
        overrides += ["hardware.packages={lion_pytorch:true}"]
    if (group, option) == ("peft", "qlora"):  # a 4-bit base needs pretrained weights: a hub model
        overrides += [*gpu, "hardware.packages={bitsandbytes:true}", "model=llama"]
    if (group, option) == ("data", "alpaca"):
        overrides.append("data.sequence_len=512")
    cfg = load_config(overrides)
    from omegaconf import OmegaConf

    path = CONF / group / f"{option}.yaml"
    written = OmegaConf.to_container(OmegaConf.load(path)) or {}
    dumped = cfg.model_dump(mode="json")
    is_global = "@package _global_" in path.read_text()
    _same_values(written, dumped if is_global else dumped[group], group if not is_global else "")


def test_grad_accum_is_derived() -> None:
    cfg = load_config(["data.global_batch=64", "data.micro_batch=16"])
    assert cfg.grad_accum == 4


def test_unknown_key_inside_yaml_is_rejected_with_its_dotted_name() -> None:
    data = compose_dict(["run.dir=/tmp/x", "+optimizer.lrr=0.1"])
    with pytest.raises(ConfigError) as info:
        from_composed(data)
    assert [p.render() for p in info.value.problems] == ["  optimizer.lrr: unknown key; did you mean lr?"]


def test_every_problem_is_reported_at_once() -> None:
    lines = problems_of(["optimizer.lr=abc", "data.micro_batch=0"])
    assert len(lines) == 2
    assert any(line.startswith("  optimizer.lr=abc: Input should be a valid number") for line in lines)
    assert any(line.startswith("  data.micro_batch=0: Input should be greater than 0") for line in lines)


def test_union_tag_is_not_part_of_the_reported_key() -> None:
    lines = problems_of(["parallelism=ddp", "parallelism.devices=0"])
    assert lines[0].startswith("  parallelism.devices=0: Input should be greater than 0"), lines


def test_global_batch_not_divisible_names_key_and_fix() -> None:
    lines = problems_of(["data.global_batch=40", "data.micro_batch=16"])
    assert lines == [
        "  data.global_batch=40: not divisible by micro_batch 16 x 1 data-parallel rank(s); "
        "use data.global_batch=32 or 48, or change data.micro_batch"
    ]


def test_ddp_ranks_enter_the_batch_arithmetic() -> None:
    lines = problems_of(
        ["parallelism=ddp", "parallelism.devices=3", "data.global_batch=64", "data.micro_batch=8"]
    )
    assert "micro_batch 8 x 3 data-parallel rank(s)" in lines[0]


def test_steps_and_epochs_exactly_one() -> None:
    assert "max_steps and max_epochs are both set" in problems_of(["trainer.max_epochs=2"])[0]
    assert "both null" in problems_of(["trainer.max_steps=null"])[0]


def test_warmup_longer_than_run() -> None:
    lines = problems_of(["trainer.max_steps=10", "scheduler.warmup_steps=10", "scheduler.warmup_ratio=0"])
    assert lines[0].startswith("  scheduler.warmup_steps=10: warmup is not shorter than the run")


def test_warmup_steps_and_ratio_not_both() -> None:
    assert "warmup_steps and warmup_ratio are both set" in problems_of(["scheduler.warmup_steps=5"])[0]


def test_validation_scheduled_without_validation_data() -> None:
    lines = problems_of(["data.validation=null"])
    assert lines[0].startswith(
        "  trainer.val_every=100: validation is scheduled but the data has no validation set"
    )


def test_two_validation_sources() -> None:
    assert "validation and val_count are both set" in problems_of(["data.val_count=10"])[0]


def test_sequence_longer_than_model_positions() -> None:
    lines = problems_of(["data.sequence_len=1024"])
    assert lines[0].startswith(
        "  data.sequence_len=1024: longer than the model's max_position_embeddings=512"
    )


def test_heads_must_divide_hidden_size() -> None:
    lines = problems_of(["model.architecture.num_attention_heads=3"])
    assert lines[0].startswith(
        "  model.architecture: hidden_size=128 is not divisible by num_attention_heads=3"
    )


def test_ddp_with_one_process() -> None:
    assert (
        "parallelism.devices=1: ddp with one process"
        in problems_of(["parallelism=ddp", "parallelism.devices=1"])[0]
    )


def test_unset_required_value_is_reported_not_accepted_as_text() -> None:
    lines = problems_of(["data.datasets.tiny_tasks.path=???"])
    assert lines == [
        "  data.datasets.tiny_tasks.path=???: required but not set; "
        "pass data.datasets.tiny_tasks.path=<value> on the command line"
    ]


def test_wrong_tag_names_the_options() -> None:
    lines = problems_of(["parallelism.strategy=fdsp"])
    assert lines == [
        "  parallelism.strategy=fdsp: unknown option (valid: single, ddp, fsdp, deepspeed); "
        "did you mean fsdp?"
    ]


def test_validated_config_is_frozen() -> None:
    cfg = load_config()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.optimizer.lr = 1.0  # type: ignore[misc]


def test_validate_accepts_a_plain_dict_without_hydra() -> None:
    cfg = load_config()
    assert validate(cfg.model_dump()) == cfg


CPU_ONLY = ["hardware.cuda=false", "hardware.gpu_count=0", "hardware.bf16=false"]
EIGHT_A100 = ["hardware.cuda=true", "hardware.gpu_count=8", "hardware.bf16=true"]
FOUR_V100 = ["hardware.cuda=true", "hardware.gpu_count=4", "hardware.bf16=false"]


def test_hardware_facts_are_detected_when_null_and_kept_when_set() -> None:
    detected = load_config().hardware
    assert detected.cuda is not None and detected.gpu_count is not None and detected.packages is not None
    assert load_config(EIGHT_A100).hardware.gpu_count == 8


def test_gpu_accelerator_without_cuda() -> None:
    lines = problems_of([*CPU_ONLY, "parallelism.accelerator=gpu"])
    assert lines == [
        "  parallelism.accelerator=gpu: no CUDA GPU on this machine (hardware.cuda=false); "
        "use parallelism.accelerator=cpu or auto, or run where a GPU is"
    ]


def test_more_ddp_processes_than_gpus() -> None:
    lines = problems_of([*FOUR_V100, "parallelism=ddp", "parallelism.devices=8", "data.global_batch=256"])
    assert lines[0].startswith("  parallelism.devices=8: more processes per node than GPUs (4)")
    cpu = load_config([*CPU_ONLY, "parallelism=ddp", "parallelism.devices=8", "data.global_batch=256"])
    assert cpu.parallelism.world_size == 8 and not cpu.on_gpu  # CPU processes are not bounded by GPUs


def test_fp16_on_cpu() -> None:
    lines = problems_of([*CPU_ONLY, "trainer.precision=16-mixed"])
    assert lines[0].startswith("  trainer.precision=16-mixed: fp16 mixed precision needs a CUDA GPU")
    assert load_config([*FOUR_V100, "trainer.precision=16-mixed"]).precision == "16-mixed"


def test_bf16_on_gpus_without_it() -> None:
    lines = problems_of([*FOUR_V100, "trainer.precision=bf16-mixed"])
    assert lines[0].startswith("  trainer.precision=bf16-mixed: these GPUs do not support bfloat16")
    assert load_config([*CPU_ONLY, "trainer.precision=bf16-mixed"]).precision == "bf16-mixed"  # works on CPU


def test_auto_precision_follows_the_hardware() -> None:
    assert load_config([*EIGHT_A100, "trainer.precision=auto"]).precision == "bf16-mixed"
    assert load_config([*FOUR_V100, "trainer.precision=auto"]).precision == "32"
    assert load_config([*CPU_ONLY, "trainer.precision=auto"]).precision == "32"


def test_keep_best_needs_a_metric() -> None:
    lines = problems_of(["trainer.keep_best=2"])
    assert lines == [
        "  trainer.keep_best=2: keeping the best checkpoints needs a metric to rank them; "
        "set trainer.best_metric=val/loss or val/exact_match"
    ]


def test_keep_best_needs_validation() -> None:
    lines = problems_of(["trainer.keep_best=2", "trainer.best_metric=val/loss", "trainer.val_every=disable"])
    assert lines[0].startswith(
        "  trainer.keep_best=2: best checkpoints are ranked by validation, which never runs"
    )


def test_best_metric_without_keep_best() -> None:
    assert problems_of(["trainer.best_metric=val/loss"])[0].startswith(
        "  trainer.best_metric=val/loss: has no effect while trainer.keep_best=0"
    )
    assert (
        load_config(["trainer.best_metric=val/exact_match", "trainer.keep_best=1"]).trainer.best_mode == "max"
    )


def test_keep_last_without_periodic_checkpoints() -> None:
    lines = problems_of(["trainer.keep_last=2", "trainer.checkpoint_every=disable"])
    assert lines[0].startswith("  trainer.keep_last=2: there are no periodic checkpoints to keep")


def test_worker_options_without_workers() -> None:
    assert problems_of(["data.prefetch_factor=4"])[0].startswith(
        "  data.prefetch_factor=4: applies to worker processes, and data.num_workers=0 starts none"
    )
    assert problems_of(["data.persistent_workers=true"])[0].startswith("  data.persistent_workers=True:")
    data = load_config(["data.num_workers=2", "data.prefetch_factor=4", "data.persistent_workers=true"]).data
    assert (data.num_workers, data.prefetch_factor, data.persistent_workers) == (2, 4, True)


def test_deterministic_excludes_cudnn_benchmark() -> None:
    lines = problems_of(["trainer.deterministic=true", "trainer.cudnn_benchmark=true"])
    assert lines[0].startswith("  trainer.cudnn_benchmark=True: cuDNN autotuning picks kernels by timing")
    assert load_config(["trainer.deterministic=true"]).trainer.deterministic


def test_interpolation_that_cannot_resolve_names_its_key(monkeypatch) -> None:
    monkeypatch.delenv("TRAINER_TEST_UNSET", raising=False)
    lines = problems_of(["optimizer.lr=${oc.env:TRAINER_TEST_UNSET}"])
    assert lines[0].startswith("  optimizer.lr=<interpolation>: could not resolve:"), lines
    assert "TRAINER_TEST_UNSET" in lines[0]


def test_eight_bit_adamw_needs_cuda_and_bitsandbytes() -> None:
    lines = problems_of([*CPU_ONLY, "optimizer=adamw8bit"])
    assert lines[0] == (
        "  optimizer.name=adamw8bit: bitsandbytes' 8-bit AdamW needs a CUDA GPU; this run is on the CPU; "
        "use optimizer=adamw"
    )
    no_bnb = problems_of([*EIGHT_A100, "hardware.packages={bitsandbytes:false}", "optimizer=adamw8bit"])
    assert no_bnb[0] == (
        "  optimizer.name=adamw8bit: bitsandbytes' 8-bit AdamW needs the bitsandbytes package, which is "
        "not installed; pip install bitsandbytes, or optimizer=adamw"
    )
    cfg = load_config([*EIGHT_A100, "hardware.packages={bitsandbytes:true}", "optimizer=adamw8bit"])
    assert cfg.optimizer.name == "adamw8bit" and cfg.optimizer.state_bytes_per_param == 2


def test_fused_adamw_on_cpu() -> None:
    lines = problems_of([*CPU_ONLY, "optimizer.fused=true"])
    assert lines[0].startswith(
        "  optimizer.fused=True: the fused AdamW kernel is used on CUDA GPUs only here"
    )


def test_nesterov_without_momentum() -> None:
    lines = problems_of(["optimizer=sgd", "optimizer.momentum=0", "optimizer.nesterov=true"])
    assert lines == ["  optimizer.nesterov=True: Nesterov needs momentum > 0; set optimizer.momentum=0.9"]
