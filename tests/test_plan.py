"""`trainer plan`: the dry run composes and validates like training, counts, estimates, and
writes nothing; plus the estimate formulas checked against hand-computed numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import load_config, run_cli
from trainer.config.optimizer import AdamWConfig, SGDConfig
from trainer.config.peft import LoraConfig, NoPeft
from trainer.config.presets import HUB_PRESETS
from trainer.models.estimate import (
    MemoryEstimate,
    activation_bytes,
    flops_per_token,
    gradient_bytes,
    human_bytes,
    human_count,
    preset_config,
    sharding,
    weight_bytes,
)


def _plan(args: list[str], cwd: Path):
    return run_cli(["plan", *args], cwd, timeout=120)


def _params(stdout: str) -> tuple[int, int]:
    m = re.search(r"total ([\d,]+), trainable ([\d,]+)", stdout)
    assert m, stdout
    return int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))


# --- the CLI -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_default_plan_counts_like_the_real_model_and_writes_nothing(tmp_path: Path) -> None:
    from trainer.models.accounting import count_params
    from trainer.models.build import build_model, hf_config, load_tokenizer

    proc = _plan([], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    cfg = load_config()
    model = build_model(cfg.model, hf_config(cfg.model, load_tokenizer(cfg.model)))
    real = count_params(model)
    assert _params(out) == (real.total, real.trainable)
    assert "187 per epoch" in out
    assert "1,200 total, warmup 60" in out
    assert "global 32 = micro 32 x accum 1 x 1 rank(s)" in out
    assert "model=tiny data=tiny_tasks optimizer=adamw scheduler=cosine" in out
    assert "micro_batch: 32" in out  # the resolved config is printed
    assert "6 N (full fine-tuning)" in out
    assert list(tmp_path.iterdir()) == []  # no run folder, no .hydra/, no log file


@pytest.mark.slow
def test_llama2_7b_lora_count_without_the_hub(tmp_path: Path) -> None:
    """The figure in the PEFT docs: trainable 4,194,304 of 6,742,609,920 parameters."""
    proc = _plan(
        ["model=llama2_7b", "peft=lora", "peft.r=8", "peft.target_modules=[q_proj,v_proj]"], tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert _params(proc.stdout) == (6_742_609_920, 4_194_304)
    assert "per epoch unknown" in proc.stdout and "1,200 total" in proc.stdout
    assert "(LoRA)" in proc.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_bad_config_exits_2_with_the_one_line_message(tmp_path: Path) -> None:
    proc = _plan(["optimizer.lr=abc", "hydra.run.dir=elsewhere"], tmp_path)
    assert proc.returncode == 2
    assert "trainer: invalid config (1 problem):" in proc.stderr
    assert "optimizer.lr=abc: Input should be a valid number" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_typo_in_a_group_option_is_caught_before_compose(tmp_path: Path) -> None:
    proc = _plan(["model=lama"], tmp_path)
    assert proc.returncode == 2
    assert "model=lama: unknown option" in proc.stderr and "did you mean llama" in proc.stderr


# --- make_plan in-process: the sources of the architecture ------------------------------------------


def test_local_model_folder_and_hub_dataset(tmp_path: Path) -> None:
    from transformers import LlamaConfig

    from tests.conftest import as_invocation
    from trainer.commands.plan import make_plan

    folder = tmp_path / "model"
    LlamaConfig(
        vocab_size=384, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4
    ).save_pretrained(folder)
    tokenizer = str(Path(__file__).resolve().parents[1] / "trainer" / "assets" / "tokenizer")
    cfg = load_config(
        ["model=llama", f"model.name_or_path={folder}", f"model.tokenizer={tokenizer}", "data=alpaca"],
        tmp_path / "run",
    )
    plan = make_plan(as_invocation(cfg))
    # embeddings + lm_head 2 x 384x64 (untied) + 2 x (attn 4x64x64 + mlp 3x64x128 + 2 norms) + final norm
    assert plan.params.total == 2 * 384 * 64 + 2 * (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64) + 64
    assert plan.per_epoch is None and plan.total_steps == cfg.trainer.max_steps
    assert any("hub dataset: not downloaded" in n for n in plan.notes)


def test_unknown_hub_id_says_how_to_pass_a_folder(tmp_path: Path) -> None:
    from tests.conftest import as_invocation
    from trainer.commands.plan import make_plan

    cfg = load_config(["model=llama", "model.name_or_path=someone/unknown-model"], tmp_path)
    plan = make_plan(as_invocation(cfg))
    assert plan.params is None
    assert any("model.name_or_path=DIR" in n for n in plan.notes)


# --- estimate formulas -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hub_id, total",
    [
        # 32000x4096 x 2 (untied) + 32 x (4 x 4096^2 + 3 x 4096 x 11008 + 2 x 4096) + 4096
        ("meta-llama/Llama-2-7b-hf", 6_738_415_616),
        # 128256x2048 (tied) + 16 x (2 x 2048^2 + 2 x 2048 x 512 + 3 x 2048 x 8192 + 2 x 2048) + 2048
        ("meta-llama/Llama-3.2-1B", 1_235_814_400),
    ],
)
def test_presets_count_the_published_sizes(hub_id: str, total: int) -> None:
    from trainer.config.model import ModelConfig
    from trainer.models.accounting import meta_param_counts

    counts = meta_param_counts(ModelConfig(name_or_path=hub_id), preset_config(hub_id), NoPeft())
    assert (counts.total, counts.trainable) == (total, total)


def test_lora_on_the_7b_preset() -> None:
    from trainer.config.model import ModelConfig
    from trainer.models.accounting import meta_param_counts

    hub_id = "meta-llama/Llama-2-7b-hf"
    lora = LoraConfig(r=8, target_modules=["q_proj", "v_proj"])
    counts = meta_param_counts(ModelConfig(name_or_path=hub_id), preset_config(hub_id), lora)
    assert counts.trainable == 32 * 2 * 8 * (4096 + 4096)
    assert counts.total == 6_738_415_616 + counts.trainable


def test_preset_unknown_id_is_none() -> None:
    assert preset_config("someone/else") is None
    assert set(HUB_PRESETS) >= {"meta-llama/Llama-3.2-1B", "meta-llama/Llama-2-7b-hf"}


def test_memory_terms() -> None:
    assert weight_bytes(100, 10, 2, 4) == 90 * 2 + 10 * 4
    assert weight_bytes(100, 100, 4, 4) == 400
    assert gradient_bytes(10, 4) == 40
    assert 10 * AdamWConfig().state_bytes_per_param == 80
    assert SGDConfig(momentum=0).state_bytes_per_param == 0 and SGDConfig().state_bytes_per_param == 4
    assert MemoryEstimate(1, 2, 3, 4).total == 10


def test_activation_formula_by_hand() -> None:
    # per layer at 16 bits: 34 s b h + 5 a s^2 b = 34*3*1*4 + 5*2*9*1 = 408 + 90 = 498; logits s b V 4 = 120
    args = dict(layers=2, hidden=4, heads=2, vocab=10, seq_len=3, micro_batch=1)
    assert activation_bytes(**args, act_dtype_bytes=2) == 2 * 498 + 120
    assert activation_bytes(**args, act_dtype_bytes=4) == 2 * 498 * 2 + 120
    # checkpointing: each layer's input (2 s b h = 24) kept, plus one layer recomputed
    assert activation_bytes(**args, act_dtype_bytes=2, checkpointing=True) == 2 * 24 + 498 + 120


def test_chunked_loss_holds_one_chunk_of_logits() -> None:
    args = dict(layers=2, hidden=4, heads=2, vocab=10, seq_len=3, micro_batch=1, act_dtype_bytes=2)
    assert activation_bytes(**args, loss_chunk=2) == 2 * 498 + 2 * 10 * 4  # 2 of the 3 rows of logits
    assert activation_bytes(**args, loss_chunk=64) == activation_bytes(**args)  # one chunk holds them all


def test_qlora_weights_are_four_bit_except_embeddings_and_norms() -> None:
    """The 1B preset under peft=qlora: 4.127 bits per decoder linear weight (NF4 + double-quantized
    constants), the tied 128256 x 2048 embedding, the 33 norms and the adapters in fp32."""
    from trainer.commands.plan import estimate_memory
    from trainer.models.accounting import meta_param_counts

    packages = "hardware.packages={bitsandbytes:true}"
    cfg = load_config([*GPUS[:3], packages, "model=llama3_2_1b", "peft=qlora", "data.sequence_len=128"])
    config = preset_config("meta-llama/Llama-3.2-1B")
    params = meta_param_counts(cfg.model, config, cfg.peft)
    unquantized = 128256 * 2048 + 33 * 2048
    quantized = 1_235_814_400 - unquantized
    assert params.total - params.trainable == 1_235_814_400
    want = round(quantized * (0.5 + 1 / 64 + 4 / 16384)) + (unquantized + params.trainable) * 4
    assert estimate_memory(cfg, params, config).memory.weights == want
    assert 1.4 * 2**30 < want < 1.5 * 2**30  # vs 4.6 GiB for the same base in fp32


def test_flops_per_token() -> None:
    assert flops_per_token(100, 100, full_finetune=True)[0] == 600
    assert flops_per_token(100, 10, full_finetune=False)[0] == 2 * 100 + 2 * 100 + 2 * 10


def test_human_units() -> None:
    assert human_bytes(1536) == "1.50 KiB"
    assert human_bytes(3 * 1024**3) == "3.00 GiB"
    assert human_count(6_742_609_920) == "6.74G"
    assert human_count(512) == "512"


GPUS = ["hardware.cuda=true", "hardware.gpu_count=8", "hardware.bf16=true"]
GPUS += ["hardware.packages={deepspeed:true}"]
FSDP8 = ["parallelism=fsdp", "parallelism.devices=8"]


@pytest.mark.parametrize(
    "overrides,split",
    [
        (["parallelism=ddp", "parallelism.devices=8"], (800, 800, 800)),
        (["parallelism=fsdp", "parallelism.devices=8"], (100, 100, 100)),
        ([*FSDP8, "parallelism.reshard_after_forward=false"], (800, 100, 100)),
        (["parallelism=fsdp", "parallelism.devices=8", "parallelism.cpu_offload=true"], (0, 100, 0)),
        (["parallelism=deepspeed", "parallelism.devices=8", "parallelism.stage=1"], (800, 800, 100)),
        (["parallelism=deepspeed", "parallelism.devices=8", "parallelism.stage=2"], (800, 100, 100)),
        (["parallelism=deepspeed", "parallelism.devices=8", "parallelism.stage=3"], (100, 100, 100)),
        (
            [
                "parallelism=deepspeed",
                "parallelism.devices=8",
                "parallelism.stage=3",
                "parallelism.offload_params=true",
                "parallelism.offload_optimizer=true",
            ],
            (0, 100, 0),
        ),
    ],
)
def test_memory_per_device_follows_the_strategy(overrides: list[str], split: tuple[int, int, int]) -> None:
    cfg = load_config([*GPUS, *overrides, "data.global_batch=256"])
    mem = sharding(cfg.parallelism).per_device(MemoryEstimate(800, 800, 800, 5))
    assert (mem.weights, mem.gradients, mem.optimizer, mem.activations) == (*split, 5)
