"""Every cross-field rule added for the full schema: the bad config and the exact message it gets.

Each case composes the real conf/ with the given overrides (GPU-only rules state the machine as
`hardware.*` facts) and checks every problem line, so a rule that stops firing, fires twice, or changes
its advice fails here. The older rules are tested in test_config.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_config
from trainer.config import ConfigError

CPU = ["hardware.cuda=false", "hardware.gpu_count=0", "hardware.bf16=false", "hardware.packages={}"]
GPU = ["hardware.cuda=true", "hardware.gpu_count=2", "hardware.bf16=true"]
FSDP = ["parallelism=fsdp", "data.global_batch=64"]
DS = ["parallelism=deepspeed", "data.global_batch=64"]
HUB = ["model=llama", "data.sequence_len=128"]

CASES: dict[str, tuple[list[str], list[str]]] = {
    "threads_more_than_cores": (
        ["trainer.threads=4", "hardware.cpu_cores=2"],
        [
            "  trainer.threads=4: 4 thread(s) x 1 process(es) per node is more than the 2 CPU cores here; use trainer.threads<=2 or trainer.threads=auto"
        ],
    ),
    "threads_times_processes_more_than_cores": (
        [
            "trainer.threads=2",
            "hardware.cpu_cores=2",
            "parallelism=ddp",
            "parallelism.accelerator=cpu",
            "data.global_batch=64",
        ],
        [
            "  trainer.threads=2: 2 thread(s) x 2 process(es) per node is more than the 2 CPU cores here; use trainer.threads<=1 or trainer.threads=auto"
        ],
    ),
    "slurm_tasks_per_node_not_devices": (
        ["launcher=slurm", "launcher.tasks_per_node=2"],
        [
            "  launcher.tasks_per_node=2: Lightning runs one task per device and the run has parallelism.devices=1 per node; set parallelism.devices=2, or leave launcher.tasks_per_node unset (it follows parallelism.devices)"
        ],
    ),
    "slurm_nodes_not_parallelism_nodes": (
        [
            "launcher=slurm",
            "parallelism=ddp",
            "parallelism.accelerator=cpu",
            "data.global_batch=64",
            "launcher.nodes=2",
        ],
        [
            "  launcher.nodes=2: the run trains on parallelism.nodes=1 node(s); set parallelism.nodes=2 (with parallelism=ddp or fsdp), or leave launcher.nodes unset (it follows parallelism.nodes)"
        ],
    ),
    "slurm_time_too_short_for_the_signal": (
        ["launcher=slurm", "launcher.time=00:02:00"],
        [
            "  launcher.time=00:02:00: leaves no room for the requeue signal 120 s (+ up to 60 s) before the limit; use a time limit above 4 minutes, a smaller launcher.signal_before_s, or launcher.requeue=false"
        ],
    ),
    "slurm_time_unreadable": (
        ["launcher=slurm", "launcher.time=1h"],
        [
            "  launcher.time=1h: not a Slurm time limit; write minutes (90), H:M:S (01:30:00) or D-H:M:S (1-00:00:00)"
        ],
    ),
    "slurm_gpus_on_a_cpu_run": (
        ["launcher=slurm", "launcher.gpus_per_node=1", "parallelism.accelerator=cpu"],
        [
            "  launcher.gpus_per_node=1: GPUs asked for, but parallelism.accelerator=cpu would leave them idle; use launcher.gpus_per_node=0, or parallelism.accelerator=gpu"
        ],
    ),
    "slurm_gpu_run_without_gpus": (
        ["launcher=slurm", "parallelism.accelerator=gpu"],
        [
            "  launcher.gpus_per_node=0: parallelism.accelerator=gpu, but the job asks for no GPUs; set launcher.gpus_per_node to the GPUs per node (parallelism.devices)"
        ],
    ),
    "slurm_fewer_gpus_than_tasks": (
        [
            "launcher=slurm",
            "parallelism=ddp",
            "parallelism.accelerator=gpu",
            "data.global_batch=64",
            "launcher.gpus_per_node=1",
        ],
        [
            "  parallelism.devices=2: more processes per node than GPUs (1); use parallelism.devices<=1, or more parallelism.nodes"
        ],
    ),
    "slurm_shell_job_name": (
        ["launcher=slurm", "launcher.job_name=bash"],
        [
            "  launcher.job_name=bash: Lightning treats a job with this name as an interactive shell, and every rank hangs as rank 0; use another name, e.g. launcher.job_name=trainer"
        ],
    ),
    "val_at_start_without_data": (
        ["data.validation=null", "trainer.val_every=disable"],
        [
            "  trainer.val_at_start=True: a step-0 validation needs a validation set; set data.validation, data.val_fraction or data.val_count, or trainer.val_at_start=false"
        ],
    ),
    "gc_period_longer_than_run": (
        ["trainer.max_steps=50", "gc.mode=manual", "gc.every=100"],
        [
            "  gc.every=100: longer than the run (trainer.max_steps=50), so it never fires; use gc.every<=50, gc.every=last_step, or gc.every=disable"
        ],
    ),
    "profiler_period_longer_than_run": (
        ["trainer.max_steps=50", "profiler.every=100"],
        [
            "  profiler.every=100: longer than the run (trainer.max_steps=50), so it never fires; use profiler.every<=50, profiler.every=last_step, or profiler.every=disable"
        ],
    ),
    "manual_gc_without_period": (
        ["gc.mode=manual"],
        [
            "  gc.every=disable: gc.mode=manual turns the automatic collector off, so without a period nothing is collected; set gc.every=N (e.g. 50), or gc.mode=auto"
        ],
    ),
    "gc_period_with_auto": (
        ["gc.every=10"],
        [
            "  gc.every=10: has no effect with gc.mode=auto (Python collects on its own schedule); set gc.mode=manual, or gc.every=disable"
        ],
    ),
    "profiler_windows_overlap": (
        ["profiler.every=3"],
        [
            "  profiler.every=3: shorter than one profiling window (wait+warmup+active = 5 steps), so windows overlap; use profiler.every>=5, or shorten profiler.wait/warmup/active"
        ],
    ),
    "profiler_window_longer_than_run": (
        ["trainer.max_steps=4", "profiler.every=last_step"],
        [
            "  profiler.active=3: a profiling window (5 steps) is longer than the run (trainer.max_steps=4); lower profiler.wait/warmup/active, or train longer"
        ],
    ),
    "profiler_option_without_profiler": (
        ["profiler.record_shapes=true"],
        [
            "  profiler.record_shapes=True: has no effect while profiler.every=disable; set profiler.every=N or last_step to profile"
        ],
    ),
    "memory_snapshot_on_cpu": (
        [
            "hardware.cuda=false",
            "hardware.gpu_count=0",
            "hardware.bf16=false",
            "hardware.packages={}",
            "profiler.every=100",
            "profiler.memory_snapshot=true",
        ],
        [
            "  profiler.memory_snapshot=True: snapshots record the CUDA caching allocator; this run is on the CPU; set profiler.memory_snapshot=false (profiler.profile_memory=true tracks CPU allocations)"
        ],
    ),
    "resume_path_missing": (
        ["run.resume=/nonexistent/last.ckpt"],
        [
            "  run.resume=/nonexistent/last.ckpt: no checkpoint there (looked in /nonexistent/last.ckpt); pass an existing .ckpt file or checkpoint folder, run.resume=auto, or run.resume=none"
        ],
    ),
    "clip_norm_without_clipping": (
        ["trainer.gradient_clip=null", "trainer.gradient_clip_norm=1.0"],
        [
            "  trainer.gradient_clip_norm=1.0: has no effect while trainer.gradient_clip=null; set trainer.gradient_clip=<max norm>, or remove gradient_clip_norm"
        ],
    ),
    "lion_without_package": (
        ["optimizer=lion", "hardware.packages={lion_pytorch:false}"],
        [
            "  optimizer.name=lion: Lion needs the lion-pytorch package, which is not installed; pip install lion-pytorch, or optimizer=adamw"
        ],
    ),
    "flash_on_cpu": (
        [
            "hardware.cuda=false",
            "hardware.gpu_count=0",
            "hardware.bf16=false",
            "hardware.packages={}",
            "model.attn_implementation=flash_attention_2",
        ],
        [
            "  model.attn_implementation=flash_attention_2: flash-attn needs a CUDA GPU; this run is on the CPU; use model.attn_implementation=sdpa",
            "  model.attn_implementation=flash_attention_2: flash-attn computes in fp16/bf16 only, and this run is fp32 throughout; set trainer.precision=bf16-mixed (or auto), or model.attn_implementation=sdpa",
        ],
    ),
    "flash_without_package": (
        [
            "hardware.cuda=true",
            "hardware.gpu_count=2",
            "hardware.bf16=true",
            "hardware.packages={}",
            "model.attn_implementation=flash_attention_2",
            "trainer.precision=bf16-mixed",
        ],
        [
            "  model.attn_implementation=flash_attention_2: flash-attn needs the flash-attn package, which is not installed; pip install flash-attn, or model.attn_implementation=sdpa"
        ],
    ),
    "flex_on_cpu": (
        ["hardware.cuda=false", "model.attn_implementation=flex_attention"],
        [
            "  model.attn_implementation=flex_attention: training with FlexAttention (its backward) needs a CUDA GPU; this run is on the CPU; use model.attn_implementation=sdpa (it masks packed documents too)"
        ],
    ),
    "loss_chunks_under_fsdp": (
        [*FSDP, "model.loss_chunk_tokens=1024"],
        [
            "  model.loss_chunk_tokens=1024: the chunked loss calls the output layer outside the model's forward, which parallelism=fsdp shards; set model.loss_chunk_tokens=null, or use parallelism=ddp or single"
        ],
    ),
    "loss_chunks_with_dpo": (
        ["data=tiny_prefs", "objective=dpo", "peft=lora", "model.loss_chunk_tokens=1024"],
        [
            "  model.loss_chunk_tokens=1024: objective=dpo scores whole sequences from their logits; the chunked loss is the SFT token loss; set model.loss_chunk_tokens=null"
        ],
    ),
    "loss_chunks_with_softcapped_logits": (
        ["model=gemma2_2b", "model.loss_chunk_tokens=1024", "model.attn_implementation=eager"],
        [
            "  model.loss_chunk_tokens=1024: this model scales or soft-caps its output logits (google/gemma-2-2b, built-in preset), which the chunked loss leaves out; set model.loss_chunk_tokens=null"
        ],
    ),
    "loss_chunks_too_small": (
        ["model.loss_chunk_tokens=8"],
        ["  model.loss_chunk_tokens=8: Input should be greater than or equal to 64"],
    ),
    "flash_in_fp32": (
        [
            "hardware.cuda=true",
            "hardware.gpu_count=2",
            "hardware.bf16=true",
            "hardware.packages={flash_attn:true}",
            "model.attn_implementation=flash_attention_2",
        ],
        [
            "  model.attn_implementation=flash_attention_2: flash-attn computes in fp16/bf16 only, and this run is fp32 throughout; set trainer.precision=bf16-mixed (or auto), or model.attn_implementation=sdpa"
        ],
    ),
    "quantize_on_cpu": (
        [
            "hardware.cuda=false",
            "hardware.gpu_count=0",
            "hardware.bf16=false",
            "hardware.packages={}",
            "model=llama",
            "data.sequence_len=128",
            "peft=qlora",
        ],
        [
            "  model.quantize=nf4: bitsandbytes quantization needs a CUDA GPU; this run is on the CPU; use model.quantize=null with peft=lora"
        ],
    ),
    "quantize_without_bitsandbytes": (
        [
            "hardware.cuda=true",
            "hardware.gpu_count=2",
            "hardware.bf16=true",
            "hardware.packages={}",
            "model=llama",
            "data.sequence_len=128",
            "peft=qlora",
        ],
        [
            "  model.quantize=nf4: bitsandbytes quantization needs the bitsandbytes package, which is not installed; pip install bitsandbytes, or model.quantize=null with peft=lora"
        ],
    ),
    "quantize_from_scratch": (
        [
            "hardware.cuda=true",
            "hardware.gpu_count=2",
            "hardware.bf16=true",
            "hardware.packages={bitsandbytes:true}",
            "peft=qlora",
        ],
        [
            "  model.quantize=nf4: quantization compresses pretrained weights; a from-scratch model has none to load; set model.from_scratch=false with model.name_or_path, or model.quantize=null"
        ],
    ),
    "quantize_full_finetune": (
        [
            "hardware.cuda=true",
            "hardware.gpu_count=2",
            "hardware.bf16=true",
            "hardware.packages={bitsandbytes:true}",
            "model=llama",
            "data.sequence_len=128",
            "model.quantize=nf4",
        ],
        [
            "  model.quantize=nf4: quantized weights cannot be trained directly; use peft=qlora (or peft=lora for int8), or model.quantize=null"
        ],
    ),
    "qlora_on_int8": (
        [
            "hardware.cuda=true",
            "hardware.gpu_count=2",
            "hardware.bf16=true",
            "hardware.packages={bitsandbytes:true}",
            "model=llama",
            "data.sequence_len=128",
            "peft=qlora",
            "model.quantize=int8",
        ],
        [
            "  model.quantize=int8: peft=qlora trains LoRA on a 4-bit base; set model.quantize=nf4 (or fp4), or use peft=lora"
        ],
    ),
    "lora_on_four_bit": (
        [
            "hardware.cuda=true",
            "hardware.gpu_count=2",
            "hardware.bf16=true",
            "hardware.packages={bitsandbytes:true}",
            "model=llama",
            "data.sequence_len=128",
            "peft=lora",
            "model.quantize=nf4",
        ],
        [
            "  peft.method=lora: LoRA on a nf4 base is QLoRA; use peft=qlora (same options), or model.quantize=null"
        ],
    ),
    "fsdp1_on_cpu": (
        [
            "hardware.cuda=false",
            "hardware.gpu_count=0",
            "hardware.bf16=false",
            "hardware.packages={}",
            "parallelism=fsdp",
            "data.global_batch=64",
            "parallelism.version=1",
        ],
        [
            "  parallelism.version=1: FSDP1 (Lightning's FSDPStrategy) needs a CUDA GPU; this run is on the CPU; use parallelism.version=2 (FSDP2 runs on the CPU too)"
        ],
    ),
    "deepspeed_on_cpu": (
        [
            "hardware.cuda=false",
            "hardware.gpu_count=0",
            "hardware.bf16=false",
            "hardware.packages={}",
            "parallelism=deepspeed",
            "data.global_batch=64",
        ],
        [
            "  parallelism.strategy=deepspeed: Lightning's DeepSpeed strategy needs a CUDA GPU; this run is on the CPU; use parallelism=fsdp (FSDP2 runs on the CPU too)"
        ],
    ),
    "deepspeed_without_package": (
        [
            "hardware.cuda=true",
            "hardware.gpu_count=2",
            "hardware.bf16=true",
            "hardware.packages={}",
            "parallelism=deepspeed",
            "data.global_batch=64",
        ],
        [
            "  parallelism.strategy=deepspeed: Lightning's DeepSpeed strategy needs the deepspeed package, which is not installed; pip install deepspeed, or parallelism=fsdp (FSDP2 runs on the CPU too)"
        ],
    ),
    "distributed_one_process": (
        ["parallelism=fsdp", "data.global_batch=64", "parallelism.devices=1", "data.global_batch=32"],
        [
            "  parallelism.devices=1: fsdp with one process only adds overhead to single-device training; use parallelism=single, or parallelism.devices>=2"
        ],
    ),
    "offload_on_cpu": (
        [
            "hardware.cuda=false",
            "hardware.gpu_count=0",
            "hardware.bf16=false",
            "hardware.packages={}",
            "parallelism=fsdp",
            "data.global_batch=64",
            "parallelism.cpu_offload=true",
        ],
        [
            "  parallelism.cpu_offload=True: offloading moves state from GPU to CPU memory; this run is on the CPU already; set parallelism.cpu_offload=false"
        ],
    ),
    "param_offload_needs_stage3": (
        [
            "hardware.cuda=true",
            "hardware.gpu_count=2",
            "hardware.bf16=true",
            "hardware.packages={deepspeed:true}",
            "parallelism=deepspeed",
            "data.global_batch=64",
            "parallelism.offload_params=true",
        ],
        [
            "  parallelism.offload_params=True: ZeRO stage 2 keeps whole parameters on every rank; only stage 3 can offload them; set parallelism.stage=3, or parallelism.offload_params=false"
        ],
    ),
    "deepspeed_clips_two_norm": (
        [
            "hardware.cuda=true",
            "hardware.gpu_count=2",
            "hardware.bf16=true",
            "hardware.packages={deepspeed:true}",
            "parallelism=deepspeed",
            "data.global_batch=64",
            "trainer.gradient_clip_norm=1.0",
        ],
        [
            "  trainer.gradient_clip_norm=1.0: DeepSpeed clips by the 2-norm only; set trainer.gradient_clip_norm=2.0, or use parallelism=fsdp or ddp"
        ],
    ),
    "step_timeout_longer_than_init": (
        ["parallelism=fsdp", "data.global_batch=64", "parallelism.step_timeout_s=3600"],
        [
            "  parallelism.step_timeout_s=3600: longer than parallelism.init_timeout_s=1800; the step timeout is meant to fail hung steps sooner than setup; use parallelism.step_timeout_s<=1800, or null"
        ],
    ),
    "quantized_base_sharded": (
        [
            "hardware.cuda=true",
            "hardware.gpu_count=2",
            "hardware.bf16=true",
            "hardware.packages={bitsandbytes:true}",
            "model=llama",
            "data.sequence_len=128",
            "peft=qlora",
            "parallelism=fsdp",
            "data.global_batch=64",
        ],
        [
            "  parallelism.strategy=fsdp: sharding a bitsandbytes-quantized base is not supported here; use parallelism=ddp (each rank holds the small 4-bit base), or model.quantize=null"
        ],
    ),
    "single_in_multi_task_slurm_job": (
        ["hardware.slurm_nodes=2", "hardware.slurm_tasks_per_node=4"],
        [
            "  parallelism.strategy=single: this Slurm job has 8 tasks (2 node(s) x 4), but one process trains; use parallelism=ddp (or fsdp) parallelism.nodes=2 parallelism.devices=4"
        ],
    ),
    "slurm_nodes_mismatch": (
        [
            "parallelism=fsdp",
            "data.global_batch=64",
            "hardware.slurm_nodes=2",
            "hardware.slurm_tasks_per_node=2",
        ],
        [
            "  parallelism.nodes=1: the Slurm job has 2 node(s) (SLURM_JOB_NUM_NODES); set parallelism.nodes=2, or submit with --nodes=1"
        ],
    ),
    "slurm_devices_mismatch": (
        [
            "parallelism=fsdp",
            "data.global_batch=64",
            "hardware.slurm_nodes=1",
            "hardware.slurm_tasks_per_node=4",
            "data.global_batch=128",
        ],
        [
            "  parallelism.devices=2: the Slurm job runs 4 task(s) per node (SLURM_NTASKS_PER_NODE); set parallelism.devices=4, or submit with --ntasks-per-node=2"
        ],
    ),
    "more_processes_than_gpus_fsdp": (
        [
            "hardware.cuda=true",
            "hardware.gpu_count=2",
            "hardware.bf16=true",
            "parallelism=fsdp",
            "data.global_batch=64",
            "parallelism.devices=4",
            "data.global_batch=128",
        ],
        [
            "  parallelism.devices=4: more processes per node than GPUs (2); use parallelism.devices<=2, or more parallelism.nodes"
        ],
    ),
    "deepspeed_option_under_fsdp": (
        ["parallelism=fsdp", "data.global_batch=64", "+parallelism.stage=3"],
        [
            "  parallelism.stage: is an option of parallelism=deepspeed, not parallelism=fsdp; remove it, or use parallelism=deepspeed"
        ],
    ),
    "period_null": (
        ["trainer.val_every=null"],
        [
            "  trainer.val_every=None: null is not a period; use disable (never), last_step, or a positive int N"
        ],
    ),
    "period_zero": (
        ["trainer.checkpoint_every=0"],
        [
            "  trainer.checkpoint_every=0: expected a period: a positive int (every N steps), last_step or disable"
        ],
    ),
    "period_word": (
        ["trainer.log_every=sometimes"],
        [
            "  trainer.log_every=sometimes: expected a period: a positive int (every N steps), last_step or disable"
        ],
    ),
    "profiler_first_window_past_the_end": (
        ["profiler.every=12", "trainer.max_steps=12"],
        [
            "  profiler.every=12: the first window would run to step 16, past the end of the run (trainer.max_steps=12), so nothing is recorded; use profiler.every<=8, or profiler.every=last_step"
        ],
    ),
    "fsdp2_with_fp16": (
        [*GPU, *FSDP, "trainer.precision=16-mixed"],
        [
            "  trainer.precision=16-mixed: FSDP2 (Lightning's ModelParallelStrategy) has no fp16 mixed precision with a loss scaler; use trainer.precision=bf16-mixed or 32, or parallelism.version=1"
        ],
    ),
    "bf16_reduce_on_cpu_ddp": (
        [*CPU, "parallelism=ddp", "data.global_batch=64", "parallelism.reduce_dtype=bfloat16"],
        [
            "  parallelism.reduce_dtype=bfloat16: DDP's bf16 compression hook needs CUDA and NCCL; this run is on the CPU (gloo); use parallelism.reduce_dtype=float16 or null on the CPU"
        ],
    ),
    "data_path_missing": (
        ["data.datasets.tiny_tasks.path=/no/such/train.json"],
        [
            "  data.datasets.tiny_tasks.path=/no/such/train.json: no such file or folder; check the path (a relative path starts where you run the command), or give a hub dataset id"
        ],
    ),
    "weight_and_count": (
        ["data.datasets.tiny_tasks.weight=2", "data.datasets.tiny_tasks.count=10"],
        ["  data.datasets.tiny_tasks: weight and count are both set: choose one way to size this dataset"],
    ),
    "unknown_format_type": (
        ["data.datasets.tiny_tasks.format.type=sharegpt"],
        [
            "  data.datasets.tiny_tasks.format.type=sharegpt: unknown option (valid: alpaca, chat, completion, input_output, pretokenized, preference, kto); did you mean chat?",
            "  data.validation.tiny_tasks.format.type=sharegpt: unknown option (valid: alpaca, chat, completion, input_output, pretokenized, preference, kto); did you mean chat?",
        ],
    ),
    "chat_without_trained_roles": (
        ["~data.datasets.tiny_tasks.format", "+data.datasets.tiny_tasks.format={type:chat,roles:[]}"],
        [
            "  data.datasets.tiny_tasks.format.roles=[]: no role is trained, so nothing would be learned; list at least one of system, user, assistant, tool (or set data.train_on_inputs=true)",
            "  data.validation.tiny_tasks.format.roles=[]: no role is trained, so nothing would be learned; list at least one of system, user, assistant, tool (or set data.train_on_inputs=true)",
        ],
    ),
    "format_key_of_another_format": (
        ["+data.datasets.tiny_tasks.format.roles=[user]"],
        [
            "  data.datasets.tiny_tasks.format.roles: is an option of data.datasets.tiny_tasks.format.type=chat, not data.datasets.tiny_tasks.format.type=alpaca; remove it, or use data.datasets.tiny_tasks.format.type=chat",
            "  data.validation.tiny_tasks.format.roles: is an option of data.validation.tiny_tasks.format.type=chat, not data.validation.tiny_tasks.format.type=alpaca; remove it, or use data.validation.tiny_tasks.format.type=chat",
        ],
    ),
    "name_or_path_unused_beside_architecture": (
        ["model.name_or_path=someone/some-model"],
        [
            "  model.name_or_path=someone/some-model: not used: the model is built from model.architecture with random weights (model.from_scratch=true) and the tokenizer is model.tokenizer; to fine-tune its weights use a preset that loads them (model=llama3_2_1b model.name_or_path=someone/some-model); for random init from its config.json set model.architecture=null; or remove model.name_or_path"
        ],
    ),
    "model_path_not_there": (
        ["model=llama", "model.name_or_path=/models/Llama-3.2-1B"],
        [
            "  model.name_or_path=/models/Llama-3.2-1B: no such folder; check the path (a relative path starts where you run the command); a hub id is org/name, with no leading / . or ~"
        ],
    ),
    "tokenizer_path_not_there": (
        ["model.tokenizer=./no/such-tokenizer"],
        [
            "  model.tokenizer=./no/such-tokenizer: no such folder; check the path (a relative path starts where you run the command); a hub id is org/name, with no leading / . or ~"
        ],
    ),
    "unknown_chat_template": (
        ["data.chat_template=zephyr"],
        ["  data.chat_template=zephyr: Input should be 'auto', 'chatml' or 'llama3'"],
    ),
}


def problems_of(overrides: list[str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(overrides)
    return [p.render() for p in info.value.problems]


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_message(name: str) -> None:
    overrides, expected = CASES[name]
    assert problems_of(overrides) == expected


def test_sequence_len_is_checked_against_a_local_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "max_position_embeddings": 256}))
    lines = problems_of(["model=llama", f"model.name_or_path={tmp_path}", "data.sequence_len=512"])
    assert lines == [
        f"  data.sequence_len=512: longer than the model's max_position_embeddings=256 "
        f"({tmp_path / 'config.json'}); use data.sequence_len<=256"
    ]
    assert (
        load_config(
            ["model=llama", f"model.name_or_path={tmp_path}", "data.sequence_len=256"]
        ).data.sequence_len
        == 256
    )


def test_name_or_path_is_accepted_where_something_reads_it(tmp_path: Path) -> None:
    """Beside an architecture with no model.tokenizer, name_or_path is the tokenizer; without an
    architecture it is the config.json of the random init; loaded, it is the weights."""
    tokenizer = load_config().model.tokenizer
    as_tokenizer = load_config([f"model.name_or_path={tokenizer}", "model.tokenizer=null"]).model
    assert (as_tokenizer.tokenizer_source, as_tokenizer.label) == (tokenizer, "built-in tiny llama")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    as_config = load_config([f"model.name_or_path={tmp_path}", "model.architecture=null"]).model
    assert (as_config.from_scratch, as_config.label) == (True, str(tmp_path))
    pretrained = load_config(["model=llama"]).model
    assert (pretrained.from_scratch, pretrained.label) == (False, "meta-llama/Llama-3.2-1B")


def test_resume_path_that_exists_is_accepted(tmp_path: Path) -> None:
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"")
    assert load_config([f"run.resume={ckpt}"]).run.resume_path == str(ckpt)
    assert load_config(["run.resume=none"]).run.resume_path is None


def test_data_file_type_and_cache_dir(tmp_path: Path) -> None:
    data = tmp_path / "train.xml"
    data.write_text("<a/>")
    cache = tmp_path / "cache"
    cache.write_text("a file")
    lines = problems_of([f"data.datasets.tiny_tasks.path={data}", f"data.cache_dir={cache}"])
    assert len(lines) == 2
    assert lines[0].startswith("  data.datasets.tiny_tasks.path=") and lines[0].endswith(
        ": cannot tell how to read a .xml file; use one of .json .jsonl .parquet .csv .txt, "
        "or set data.datasets.tiny_tasks.file_type=json|jsonl|parquet|csv|text"
    )
    assert lines[1].startswith("  data.cache_dir=") and lines[1].endswith(
        ": is a file, not a folder; point it at a folder, or data.cache=false"
    )
    cfg = load_config([f"data.datasets.tiny_tasks.path={data}", "data.datasets.tiny_tasks.file_type=jsonl"])
    assert cfg.data.datasets["tiny_tasks"].file_type == "jsonl"


def test_valid_gpu_configs_pass_the_same_rules() -> None:
    """The positive side of the CUDA rules: the same options validate on a machine that has what they need."""
    packages = "hardware.packages={deepspeed:true,bitsandbytes:true,flash_attn:true}"
    zero3 = load_config([*GPU, packages, *DS, "parallelism.stage=3", "parallelism.offload_params=true"])
    assert (zero3.parallelism.stage, zero3.parallelism.offload_params) == (3, True)
    qlora = load_config([*GPU, packages, *HUB, "peft=qlora", "parallelism=ddp", "data.global_batch=64"])
    assert (qlora.peft.method, qlora.model.quantize, qlora.grad_accum) == ("qlora", "nf4", 1)
    flash = load_config(
        [*GPU, packages, "model.attn_implementation=flash_attention_2", "trainer.precision=auto"]
    )
    assert flash.precision == "bf16-mixed"  # auto on a bf16 GPU: what flash-attn needs
    flex = load_config([*GPU, "model.attn_implementation=flex_attention", "model.loss_chunk_tokens=4096"])
    assert (flex.model.attn_implementation, flex.model.loss_chunk_tokens) == ("flex_attention", 4096)
    fsdp1 = load_config([*GPU, packages, *FSDP, "parallelism.version=1", "parallelism.cpu_offload=true"])
    assert (fsdp1.parallelism.version, fsdp1.parallelism.cpu_offload, fsdp1.on_gpu) == (1, True, True)
    slurm = load_config([*FSDP, "hardware.slurm_nodes=1", "hardware.slurm_tasks_per_node=2"])
    assert slurm.parallelism.world_size == slurm.hardware.slurm_tasks_per_node == 2
