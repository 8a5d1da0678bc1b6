"""Strategies: what `for_config(cfg).strategy()` builds per option, the DeepSpeed config, FSDP2 sharding,
gradient norms on real gloo process groups, DeepSpeed configs through raw `deepspeed.initialize`, and one
end-to-end FSDP2 run of the CLI on 2 CPU processes.

Lightning's FSDPStrategy (FSDP1) and DeepSpeedStrategy refuse CPUs, so for them only the objects are
checked here (configs are validated with the facts of a GPU machine); the DeepSpeed config itself runs
for real through `deepspeed.initialize`, which does work on CPU.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import ROOT, cli_env, free_port, load_config, run_cli
from trainer.config import TrainConfig
from trainer.config.parallelism import FSDP
from trainer.config.peft import LoraConfig
from trainer.models.build import build_model, hf_config, load_tokenizer, quantization_config
from trainer.models.peft import apply_peft
from trainer.parallel import for_config
from trainer.parallel.base import total_norm
from trainer.parallel.ddp import fp32_reduce_hook
from trainer.parallel.deepspeed import deepspeed_config
from trainer.parallel.fsdp1 import DecoderLayerWrapPolicy
from trainer.parallel.fsdp2 import shard_model
from trainer.parallel.layers import decoder_layers

# The facts of a 2-GPU machine with deepspeed, so GPU-only options validate here, and a global batch that
# divides over 2 ranks (the default, 32 = micro batch 32, leaves none per rank).
GPU = "hardware.cuda=true hardware.gpu_count=2 hardware.bf16=true hardware.packages={deepspeed:true}"
TWO_RANKS = "data.global_batch=64"
HAS_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None


def _cfg(overrides: str) -> TrainConfig:
    """`load_config` from space-separated overrides (none here contains a space)."""
    return load_config(overrides.split())


def _tiny(peft: LoraConfig | None = None) -> torch.nn.Module:
    cfg = load_config()
    model = build_model(cfg.model, hf_config(cfg.model, load_tokenizer(cfg.model)))
    return apply_peft(model, peft) if peft else model


# --- the Lightning strategy, per option ---------------------------------------------------------------------


def test_single_device_is_auto() -> None:
    assert for_config(load_config()).strategy() == "auto"


def test_ddp_timeout_unused_parameters_and_comm_hooks() -> None:
    from lightning.pytorch.strategies import DDPStrategy
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    def hook(overrides: str) -> object:
        return for_config(_cfg(f"parallelism=ddp {TWO_RANKS} {overrides}")).strategy()._ddp_comm_hook

    unused = "parallelism.find_unused_parameters=true"
    s = for_config(_cfg(f"parallelism=ddp {TWO_RANKS} parallelism.init_timeout_s=90 {unused}")).strategy()
    assert type(s) is DDPStrategy and s._timeout == timedelta(seconds=90)
    assert s._ddp_kwargs["find_unused_parameters"] is True and s._ddp_comm_hook is None
    assert hook("parallelism.reduce_dtype=float16") is default_hooks.fp16_compress_hook
    # fp32 gradients already reduce in fp32; bf16 weights (bf16-true) need the upcasting hook.
    assert hook("parallelism.reduce_dtype=float32") is None
    assert hook("parallelism.reduce_dtype=float32 trainer.precision=bf16-true") is fp32_reduce_hook
    # torch's DDP only accepts the bf16 hook on CUDA + NCCL (measured: TypeError under gloo on CPU); that
    # case is rejected at validation (tests/test_rules.py::bf16_reduce_on_cpu_ddp).
    assert hook(f"parallelism.reduce_dtype=bfloat16 {GPU}") is default_hooks.bf16_compress_hook


def test_fsdp2_is_model_parallel_over_every_process() -> None:
    from lightning.pytorch.strategies import ModelParallelStrategy

    base = "parallelism=fsdp parallelism.accelerator=cpu data.global_batch=128 data.micro_batch=16"
    s = for_config(_cfg(f"{base} parallelism.nodes=2 parallelism.init_timeout_s=60")).strategy()
    assert isinstance(s, ModelParallelStrategy) and type(s).__name__ == "ModelParallelStrategy"
    # Lightning's mesh is (data_parallel, tensor_parallel) and their product must be the world size.
    assert (s._data_parallel_size, s._tensor_parallel_size) == (4, 1)
    assert s._save_distributed_checkpoint is True and s._timeout == timedelta(seconds=60)
    full = for_config(_cfg(f"{base} parallelism.sharded_checkpoint=false")).strategy()
    assert full._save_distributed_checkpoint is False


def test_fsdp1_strategy_settings() -> None:
    from lightning.pytorch.strategies import FSDPStrategy
    from torch.distributed.fsdp import ShardingStrategy

    fsdp1 = f"parallelism=fsdp parallelism.version=1 {TWO_RANKS} {GPU}"
    s = for_config(_cfg(fsdp1)).strategy()
    assert isinstance(s, FSDPStrategy) and s.sharding_strategy == ShardingStrategy.FULL_SHARD
    assert s.cpu_offload.offload_params is False and s.mixed_precision is None
    assert s._state_dict_type == "sharded" and s._timeout == timedelta(seconds=1800)
    assert isinstance(s.kwargs["auto_wrap_policy"], DecoderLayerWrapPolicy)
    s = for_config(
        _cfg(
            f"{fsdp1} parallelism.reshard_after_forward=false parallelism.cpu_offload=true "
            "parallelism.reduce_dtype=float32 parallelism.sharded_checkpoint=false "
            "trainer.precision=bf16-mixed"
        )
    ).strategy()
    assert s.sharding_strategy == ShardingStrategy.SHARD_GRAD_OP and s.cpu_offload.offload_params is True
    assert s._state_dict_type == "full"
    mp = s.mixed_precision
    assert (mp.param_dtype, mp.buffer_dtype, mp.reduce_dtype) == (torch.bfloat16,) * 2 + (torch.float32,)


def test_deepspeed_strategy_takes_the_config_less_what_lightning_sets() -> None:
    from lightning.pytorch.strategies import DeepSpeedStrategy

    cfg = _cfg(f"parallelism=deepspeed parallelism.stage=3 parallelism.init_timeout_s=120 {TWO_RANKS} {GPU}")
    s = for_config(cfg).strategy()
    assert isinstance(s, DeepSpeedStrategy) and s._timeout == timedelta(seconds=120)
    expected = deepspeed_config(cfg)
    del expected["gradient_accumulation_steps"]  # Lightning raises if the config sets it
    assert s.config == expected and s.zero_stage_3


# --- the DeepSpeed config ----------------------------------------------------------------------------


def test_deepspeed_config_stage3_offload_bf16() -> None:
    cfg = _cfg(
        "parallelism=deepspeed parallelism.stage=3 parallelism.offload_optimizer=true "
        "parallelism.offload_params=true parallelism.reduce_dtype=float32 parallelism.bucket_size=1000 "
        f"parallelism.overlap_comm=false trainer.precision=bf16-mixed trainer.gradient_clip=0.5 "
        f"{TWO_RANKS} data.micro_batch=8 {GPU}"
    )
    c = deepspeed_config(cfg)
    zero = c["zero_optimization"]
    assert zero["stage"] == 3 and zero["overlap_comm"] is False
    assert zero["reduce_bucket_size"] == zero["stage3_prefetch_bucket_size"] == 1000
    assert zero["offload_optimizer"]["device"] == zero["offload_param"]["device"] == "cpu"
    assert c["zero_force_ds_cpu_optimizer"] is False  # our optimizer is torch's AdamW, not DeepSpeedCPUAdam
    assert c["bf16"] == {"enabled": True} and "fp16" not in c
    assert c["communication_data_type"] == "fp32" and c["gradient_clipping"] == 0.5
    assert (c["train_micro_batch_size_per_gpu"], c["gradient_accumulation_steps"]) == (8, 4)
    assert c["zero_allow_untested_optimizer"] is True


def test_deepspeed_config_stage1_fp16_and_stage2_fp32() -> None:
    base = f"parallelism=deepspeed {TWO_RANKS} {GPU}"
    c = deepspeed_config(
        _cfg(f"{base} parallelism.stage=1 trainer.precision=16-mixed parallelism.reduce_dtype=float16")
    )
    assert c["zero_optimization"]["stage"] == 1 and "offload_optimizer" not in c["zero_optimization"]
    assert c["fp16"]["enabled"] is True and c["fp16"]["loss_scale"] == 0 and "bf16" not in c
    assert c["communication_data_type"] == "fp16"
    c = deepspeed_config(_cfg(f"{base} trainer.precision='32' trainer.gradient_clip=null"))
    zero = c["zero_optimization"]
    assert zero["stage"] == 2 and "stage3_prefetch_bucket_size" not in zero
    assert "bf16" not in c and "fp16" not in c and "communication_data_type" not in c
    assert c["gradient_clipping"] == 0.0


# --- decoder layers, FSDP1 policy, quantization config ------------------------------------------------


@pytest.mark.parametrize("peft", [None, LoraConfig(r=4)])
def test_decoder_layers_are_found_through_peft_and_by_the_fsdp1_policy(peft) -> None:
    model = _tiny(peft)
    layers = decoder_layers(model)
    assert [type(m).__name__ for m in layers] == ["LlamaDecoderLayer"] * 4
    # FSDP1 applies the policy to the wrapped root (the LightningModule): one unit per decoder layer.
    root = torch.nn.ModuleDict({"model": model})
    targets = DecoderLayerWrapPolicy()._run_policy(root, set(), {})
    assert set(targets) == set(layers)
    with pytest.raises(ValueError, match="no decoder layers"):
        decoder_layers(torch.nn.Linear(2, 2))


def test_quantization_config_per_option() -> None:
    def q(kind: str):
        return quantization_config(SimpleNamespace(quantize=kind))

    nf4 = q("nf4")
    assert nf4.load_in_4bit and nf4.bnb_4bit_quant_type == "nf4" and nf4.bnb_4bit_use_double_quant
    assert nf4.bnb_4bit_compute_dtype == torch.bfloat16
    assert q("fp4").bnb_4bit_quant_type == "fp4" and q("int8").load_in_8bit
    assert quantization_config(SimpleNamespace(quantize=None)) is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("quantize,peft", [("nf4", "qlora"), ("int8", "lora")])
def test_quantized_base_with_lora_trains_on_gpu(tmp_path: Path, quantize: str, peft: str) -> None:
    pytest.importorskip("bitsandbytes")
    _tiny().save_pretrained(tmp_path)
    load_tokenizer(load_config().model).save_pretrained(tmp_path)
    cfg = _cfg(
        f"model.name_or_path={tmp_path} model.from_scratch=false peft={peft} model.quantize={quantize}"
    )
    model = apply_peft(build_model(cfg.model, hf_config(cfg.model, None)), cfg.peft)
    kinds = {type(m).__name__ for m in model.modules()}
    assert ("Linear4bit" if quantize == "nf4" else "Linear8bitLt") in kinds
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    ids = torch.randint(0, 300, (2, 16), device="cuda")
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert math.isfinite(loss.item()) and all(p.grad is not None for p in trainable)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clipping_hook_unscales_clips_by_the_norm_type_and_logs_the_norm(monkeypatch, norm_type) -> None:
    """With a fused optimizer under fp16 AMP (the GPU default), Lightning leaves gradients scaled when
    this hook runs; the hook must unscale, clip by the configured norm, and the step must still match."""
    from trainer.training.module import CausalLMModule

    cfg = _cfg(f"trainer.gradient_clip_norm={norm_type} trainer.gradient_clip=0.05")
    module = CausalLMModule(cfg, hf_config(cfg.model, load_tokenizer(cfg.model)), 10, for_config(cfg))
    module.configure_model()
    ref = copy.deepcopy(module.model)
    ids = torch.tensor([[1, 5, 9, 12, 7, 3]])
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale(module.model(input_ids=ids, labels=ids).loss).backward()
    ref(input_ids=ids, labels=ids).loss.backward()
    opt, ref_opt = (torch.optim.AdamW(m.parameters(), lr=0.1, fused=True) for m in (module.model, ref))

    logged: dict[str, torch.Tensor] = {}
    module._trainer = SimpleNamespace(
        strategy=SimpleNamespace(), precision_plugin=SimpleNamespace(scaler=scaler)
    )
    monkeypatch.setattr(module, "log", lambda name, value, **_: logged.update({name: value}))
    module.configure_gradient_clipping(opt, 0.05)
    want = torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.05, norm_type=norm_type)
    torch.testing.assert_close(logged["train/grad_norm"], want)
    grads = [p.grad for p in module.model.parameters() if p.grad is not None]
    assert torch.nn.utils.get_total_norm(grads, norm_type).item() == pytest.approx(0.05, rel=1e-4)
    scaler.step(opt)  # must not unscale a second time
    ref_opt.step()
    for mine, theirs in zip(module.model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs)


# --- real process groups: DDP hooks and FSDP2 on gloo -------------------------------------------------


def _ddp_hook_checks(rank: int, world: int) -> None:
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.nn.parallel import DistributedDataParallel

    def grads(hook, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        model = torch.nn.Linear(16, 4).to(dtype)
        ddp = DistributedDataParallel(model)
        ddp.register_comm_hook(None, hook)
        x = torch.randn(8, 16, generator=torch.Generator().manual_seed(rank)).to(dtype)
        ddp(x).float().sum().backward()
        local = x.float().sum(0).expand(4, 16).contiguous()  # d(sum(Wx+b))/dW, this rank's batch
        torch.distributed.all_reduce(local)
        return model.weight.grad.float(), local / world

    got, want = grads(default_hooks.fp16_compress_hook, torch.float32)
    torch.testing.assert_close(got, want, rtol=2e-3, atol=2e-3)
    got, want = grads(fp32_reduce_hook, torch.bfloat16)
    torch.testing.assert_close(got, want, rtol=2e-2, atol=5e-2)  # bf16 inputs and gradients
    if torch.version.cuda is None:  # a CPU build of torch: DDP refuses the bf16 hook outright
        with pytest.raises(TypeError, match="BF16"):
            grads(default_hooks.bf16_compress_hook, torch.float32)


def _fsdp2_norm_checks(rank: int, world: int) -> None:
    """Sharded grads (DTensor) give the same norms, and clip the same, as the replicated model."""
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (world,))
    for peft, reduce in ((None, None), (LoraConfig(r=4), "bfloat16")):
        torch.manual_seed(0)
        ref, sharded = _tiny(), _tiny()
        sharded.load_state_dict(ref.state_dict())
        if peft:
            ref, sharded = apply_peft(ref, peft), apply_peft(sharded, peft)
            sharded.load_state_dict(ref.state_dict())
        shard_model(sharded, mesh, FSDP(reduce_dtype=reduce))
        ids = torch.randint(0, 300, (2, 12), generator=torch.Generator().manual_seed(rank))
        for model in (ref, sharded):
            model(input_ids=ids, labels=ids).loss.backward()
        for p in ref.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= world
        opts = [torch.optim.SGD([p for p in m.parameters() if p.requires_grad]) for m in (ref, sharded)]
        tol = 1e-5 if reduce is None else 2e-3  # bf16 reduction rounds
        for norm_type in (2.0, 1.0, math.inf):
            want, got = (total_norm(opt, None, norm_type) for opt in opts)
            torch.testing.assert_close(got, want, rtol=tol, atol=tol)
        for opt in opts:
            total_norm(opt, 0.01, 2.0)
            assert total_norm(opt, None, 2.0).item() == pytest.approx(0.01, rel=1e-3)


def _gloo_worker(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        _ddp_hook_checks(rank, world)
        _fsdp2_norm_checks(rank, world)
        # Without this, a rank that finishes first can tear gloo down while its peer is still sending
        # (seen under load: "terminate called without an active exception", SIGABRT).
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_comm_hooks_and_fsdp2_grad_norms_on_two_gloo_processes() -> None:
    torch.multiprocessing.spawn(_gloo_worker, args=(2, free_port()), nprocs=2)


# --- DeepSpeed configs through raw deepspeed.initialize ---------------------------------------------

DEEPSPEED_CASES = [
    "parallelism.stage=1",
    "parallelism.stage=2",
    "parallelism.stage=3",
    "parallelism.stage=2 parallelism.offload_optimizer=true",
    "parallelism.stage=3 parallelism.offload_optimizer=true parallelism.offload_params=true",
]


class _Holder(torch.nn.Module):
    """Stands in for the LightningModule, which holds the model as `.model` (export strips that prefix)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _deepspeed_worker() -> None:
    """Run in a fresh process (DeepSpeed initializes torch.distributed): each config takes one step."""
    import deepspeed
    from lightning.pytorch.strategies import DeepSpeedStrategy

    # DeepSpeed JIT-compiles a shared-memory all-reduce op for CPU ranks on first use (~25-50 s on 2 cores).
    # It only speeds up reductions between ranks, of which a single process has none: skip the build.
    importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None  # (`.torch` is torch itself)
    deepspeed.init_distributed(dist_backend="gloo")
    base = f"parallelism=deepspeed {TWO_RANKS} data.micro_batch=32 trainer.precision='32' {GPU}"
    for case in DEEPSPEED_CASES:
        cfg = _cfg(f"{base} {case}")
        config = deepspeed_config(cfg)
        torch.manual_seed(0)
        holder = _Holder()
        before = {k: v.clone() for k, v in holder.model.state_dict().items()}
        optimizer = torch.optim.AdamW(holder.parameters(), lr=1e-2)
        engine, *_ = deepspeed.initialize(model=holder, optimizer=optimizer, config=config)
        x, y = torch.randn(32, 16), torch.randn(32, 1)
        loss = torch.nn.functional.mse_loss(engine(x), y)
        engine.backward(loss)
        engine.step()
        assert math.isfinite(loss.item()), case
        strategy = DeepSpeedStrategy(config=config)
        strategy.model = engine
        after = for_config(cfg).full_state_dict(SimpleNamespace(strategy=strategy))
        if after is None:  # stage 1/2: every rank holds whole parameters
            after = holder.model.state_dict()
        assert set(after) == set(before) and all(not torch.equal(after[k], before[k]) for k in before), case
        print("ok:", case, flush=True)
    _zero3_loads_pretrained_weights()
    print("ok zero3 load", flush=True)


def _zero3_loads_pretrained_weights() -> None:
    """Under ZeRO-3 Lightning builds the model inside `deepspeed.zero.Init`, which partitions parameters
    as they are created; the pretrained weights must still land in them (checked by gathering back)."""
    import deepspeed

    from trainer.training.module import CausalLMModule

    with tempfile.TemporaryDirectory() as folder:
        saved = _tiny()
        saved.save_pretrained(folder)
        cfg = _cfg(
            f"parallelism=deepspeed parallelism.stage=3 {TWO_RANKS} {GPU} "
            f"model.from_scratch=false model.name_or_path={folder}"
        )
        module = CausalLMModule(cfg, hf_config(cfg.model, None), 1, for_config(cfg))
        module._trainer = SimpleNamespace(strategy=SimpleNamespace(config=deepspeed_config(cfg)))
        with deepspeed.zero.Init(config_dict_or_path=deepspeed_config(cfg)):  # as Lightning does
            module.configure_model()
    params = dict(module.model.named_parameters())
    assert all(hasattr(p, "ds_id") for p in params.values())  # partitioned by ZeRO-3
    with deepspeed.zero.GatheredParameters(list(params.values())):
        for name, tensor in saved.state_dict().items():
            assert name not in params or torch.equal(params[name].data, tensor), name


@pytest.mark.slow
@pytest.mark.skipif(not HAS_DEEPSPEED, reason="deepspeed is not installed")
def test_deepspeed_configs_initialize_and_step_on_cpu() -> None:
    ranks = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"}
    env = cli_env(DS_ACCELERATOR="cpu", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), **ranks)
    code = "from tests.test_strategies import _deepspeed_worker; _deepspeed_worker()"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("ok:") == len(DEEPSPEED_CASES) and "ok zero3 load" in proc.stdout


# --- end to end: FSDP2 on 2 CPU processes through the CLI --------------------------------------------


@pytest.mark.slow
def test_fsdp2_cli_on_two_cpu_processes(tmp_path: Path, quick_overrides: list[str]) -> None:
    from mlflow.tracking import MlflowClient
    from safetensors import safe_open
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    from transformers import AutoModelForCausalLM

    """The experiment=fsdp_cpu preset: the default job over 2 CPU processes, each holding half of it."""
    kept = [o for o in quick_overrides if not o.startswith("trainer.")]
    loop = "trainer.max_steps=4 trainer.val_every=4 trainer.log_every=2 trainer.checkpoint_every=disable"
    args = [*kept, "experiment=fsdp_cpu", "run.name=fsdp", *loop.split(), "trainer.progress_bar=false"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("trainer: finished fsdp_cpu/fsdp") == 1
    assert "global 32 = micro 16 x accum 1 x 2 rank(s)" in proc.stdout  # the default job's global batch
    run = tmp_path / "outputs" / "fsdp_cpu" / "fsdp"
    # The sharded checkpoint is a folder with one shard per rank.
    last = run / "checkpoints" / "last.ckpt"
    assert last.is_dir() and (last / ".metadata").exists() and len(list(last.glob("*.distcp"))) == 2
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]  # written beside, swapped in

    # The export is a plain HF model: same size as the tiny model, same weights as the checkpoint.
    model = AutoModelForCausalLM.from_pretrained(run / "model")
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in _tiny().parameters())
    dcp_to_torch_save(last, tmp_path / "last.pt")
    saved = torch.load(tmp_path / "last.pt", weights_only=False)["state_dict"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, saved[f"model.{name}"]), name
    with safe_open(run / "model" / "model.safetensors", "pt") as f:
        assert "lm_head.weight" not in f.keys()  # tied to the embeddings, stored once as unsharded runs do

    # Trained, not the random init: validation loss fell; the pre-clip grad norm was logged.
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    (mrun,) = client.search_runs([client.get_experiment_by_name("fsdp_cpu").experiment_id])
    val = {m.step: m.value for m in client.get_metric_history(mrun.info.run_id, "val/loss")}
    assert val[4] < val[0]
    norms = client.get_metric_history(mrun.info.run_id, "train/grad_norm")
    assert norms and all(math.isfinite(m.value) and m.value > 0 for m in norms)
    # metrics.jsonl is written by rank 0 alone: each point once, at the steps MLflow holds.
    points = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [p["step"] for p in points if "train/loss" in p] == [2, 4]
    assert [p["step"] for p in points if "val/loss" in p] == sorted(val) == [0, 4]
