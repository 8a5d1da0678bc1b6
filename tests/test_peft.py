"""PEFT: options reach peft, rules on them, trainable-only checkpoints, exact resume, and the exported
model folders, loaded back with plain peft/transformers and compared with the trained model's logits.

Training runs are in-process (`train(load_config(...))`) and shared by module-scoped fixtures: one LoRA
run (modules_to_save, merge, MLflow) and one full fine-tuning run (sharded export) serve most tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from tests.conftest import load_config
from trainer.config import ConfigError
from trainer.config.peft import LoraConfig
from trainer.models.accounting import count_params, meta_param_counts
from trainer.models.build import build_model, hf_config, load_tokenizer
from trainer.models.peft import apply_peft, lora_config

SHORT = [
    "trainer.max_steps=3",
    "trainer.val_at_start=false",
    "trainer.val_every=disable",
    "trainer.checkpoint_every=disable",
    "trainer.progress_bar=false",
    "data.datasets.tiny_tasks.count=120",
    "data.global_batch=8",
    "data.micro_batch=8",
]


def _train(root: Path, name: str, *overrides: str) -> tuple[Any, Any]:
    """Train in-process; returns the result and the trained HF model (caught on its way to the export)."""
    import trainer.training.train as train_module

    caught: dict[str, Any] = {}
    export = train_module.export_run_model

    def keep(trainer: Any, module: Any, parallel: Any, tokenizer: Any, out: Path, card: Any = None) -> Any:
        caught["model"] = module.model
        return export(trainer, module, parallel, tokenizer, out, card)

    cfg = load_config(
        [*SHORT, f"run.output_root={root}", f"run.name={name}", *overrides], run_dir=root / name
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "export_run_model", keep)
        result = train_module.train(cfg)
    return result, caught["model"].eval()


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.randint(0, 384, (2, 24), generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    root = tmp_path_factory.mktemp("lora")
    return _train(root, "lora", "peft=lora", "peft.modules_to_save=[lm_head]", "peft.merge=true")


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    root = tmp_path_factory.mktemp("full")
    return _train(root, "full", "tracker=none", "++trainer.export_max_shard_size=200KB")


def _logits(model: Any, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits


# --- options and rules ---------------------------------------------------------------------------------


def test_every_option_reaches_peft_lora_config() -> None:
    cfg = LoraConfig(
        r=4, alpha=8, dropout=0.1, target_modules=r".*\.(q_proj|v_proj)", use_rslora=True, use_dora=True,
        modules_to_save=["embed_tokens", "lm_head"],
    )  # fmt: skip
    made = lora_config(cfg)
    assert (made.r, made.lora_alpha, made.lora_dropout) == (4, 8, 0.1)
    assert made.target_modules == r".*\.(q_proj|v_proj)" and made.use_rslora and made.use_dora
    assert set(made.modules_to_save) == {"embed_tokens", "lm_head"}
    assert lora_config(LoraConfig(target_modules=["q_proj"])).target_modules == {"q_proj"}


def test_dora_option_is_lora_with_magnitudes() -> None:
    cfg = load_config(["peft=dora"])
    assert cfg.peft.method == "lora" and cfg.peft.use_dora
    assert load_config(["peft=lora"]).peft == cfg.peft.model_copy(update={"use_dora": False})


def test_regex_targets_and_dora_are_counted_on_the_meta_device() -> None:
    cfg = load_config()
    config = hf_config(cfg.model, load_tokenizer(cfg.model))
    qv = LoraConfig(r=4, target_modules=r".*\.(q_proj|v_proj)")
    layers, hidden = config.num_hidden_layers, config.hidden_size
    assert meta_param_counts(cfg.model, config, qv).trainable == layers * 2 * (4 * hidden * 2)
    dora = LoraConfig(r=4, use_dora=True, modules_to_save=["lm_head"])
    assert meta_param_counts(cfg.model, config, dora) == count_params(
        apply_peft(build_model(cfg.model, config), dora)
    )


RULES = {
    "bad_regex": (
        ["peft=lora", "peft.target_modules='.*(q_proj'"],
        "  peft.target_modules=.*(q_proj: not a valid regular expression (missing ), unterminated subpattern "
        "at position 2); fix the pattern, or list module names: peft.target_modules=[q_proj,v_proj]",
    ),
    "bare_name_string": (
        ["peft=dora", "peft.target_modules=q_proj"],
        "  peft.target_modules=q_proj: a string is a regular expression that must match a module's "
        "whole path (model.layers.0.self_attn.q_proj), so a bare name adapts no layer; use a list: "
        "peft.target_modules=[q_proj], or a pattern: peft.target_modules='.*\\.q_proj'",
    ),
    "merge_without_export": (
        ["peft=lora", "peft.merge=true", "trainer.export_model=false"],
        "  peft.merge=True: the merged model is made from the exported adapter, and "
        "trainer.export_model=false exports none; set trainer.export_model=true, or peft.merge=false",
    ),
    "shard_size": (
        ["++trainer.export_max_shard_size=5gigs"],
        "  trainer.export_max_shard_size=5gigs: not a size: use an integer and a unit (KB, MB, GB, KiB, MiB, "
        "GiB), e.g. 5GB or 200MB",
    ),
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_message(name: str) -> None:
    overrides, expected = RULES[name]
    with pytest.raises(ConfigError) as info:
        load_config(overrides)
    assert [p.render() for p in info.value.problems] == [expected]


def test_valid_targets_and_qlora_merge_pass() -> None:
    regex = load_config(["peft=lora", r"peft.target_modules='.*\.(q_proj|v_proj)'"]).peft
    assert regex.target_modules == r".*\.(q_proj|v_proj)"
    names = load_config(["peft=lora", "peft.target_modules=[q_proj,v_proj]", "peft.merge=true"]).peft
    assert names.target_modules == ["q_proj", "v_proj"] and names.merge
    gpu = [
        "hardware.cuda=true",
        "hardware.gpu_count=1",
        "hardware.bf16=true",
        "hardware.packages={bitsandbytes:true}",
    ]
    # QLoRA merges into the unquantized base (trainer.models.merge), and DoRA on 4 bits is supported by peft.
    cfg = load_config([*gpu, "model=llama", "peft=qlora", "peft.merge=true", "peft.use_dora=true"])
    assert (cfg.peft.method, cfg.peft.merge, cfg.peft.use_dora, cfg.model.quantize) == (
        "qlora",
        True,
        True,
        "nf4",
    )


# --- checkpoints -------------------------------------------------------------------------------------------


def test_lora_checkpoint_holds_only_trainable_tensors(lora_run, full_run) -> None:
    result, model = lora_run
    ckpt = result.run_dir / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert state and all(".lora_" in k or ".modules_to_save." in k for k in state), sorted(state)[:5]
    assert any("lm_head.modules_to_save" in k for k in state)
    assert sum(v.numel() for v in state.values()) == count_params(model).trainable
    full = full_run[0].run_dir / "checkpoints" / "last.ckpt"
    assert ckpt.stat().st_size * 4 < full.stat().st_size


@pytest.mark.slow
def test_lora_resume_from_a_trainable_only_checkpoint_is_exact(tmp_path: Path) -> None:
    every = ["peft=lora", "tracker=none", "trainer.max_steps=6", "trainer.checkpoint_every=3"]
    straight, _ = _train(tmp_path, "straight", *every)
    ckpt = tmp_path / "straight" / "checkpoints" / "step-000003.ckpt"
    resumed, _ = _train(tmp_path, "resumed", *every, f"run.resume={ckpt}")
    assert resumed.metrics["train/loss"] == pytest.approx(straight.metrics["train/loss"], abs=1e-6)
    with (
        safe_open(straight.model_dir / "adapter_model.safetensors", "pt") as a,
        safe_open(resumed.model_dir / "adapter_model.safetensors", "pt") as b,
    ):
        assert set(a.keys()) == set(b.keys())
        assert max((a.get_tensor(k) - b.get_tensor(k)).abs().max().item() for k in a.keys()) < 1e-6
    # The comparison can fail: the step-3 adapter is not the step-6 one.
    midway = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    key = next(k for k in midway if ".lora_B." in k)
    with safe_open(straight.model_dir / "adapter_model.safetensors", "pt") as a:
        final = a.get_tensor(key.removeprefix("model.").replace(".default", ""))
    assert not torch.allclose(midway[key], final, atol=1e-6)


# --- exported folders --------------------------------------------------------------------------------------


def test_adapter_reloads_with_plain_peft_to_the_same_logits(lora_run, batch) -> None:
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    result, model = lora_run
    out = result.run_dir / "model"
    # The from-scratch base is saved into the adapter's folder (tests/test_export_outputs.py moves it).
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja",
                 "generation_config.json", "config.json", "model.safetensors", "README.md"):  # fmt: skip
        assert (out / name).exists(), name
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(out.resolve()) and adapter["modules_to_save"] == [
        "lm_head"
    ]
    with safe_open(out / "adapter_model.safetensors", "pt") as f:  # the fully trained lm_head travels along
        assert "base_model.model.lm_head.weight" in set(f.keys())
    loaded = AutoPeftModelForCausalLM.from_pretrained(out).eval()
    assert torch.equal(_logits(loaded, batch), _logits(model, batch))
    plain = AutoModelForCausalLM.from_pretrained(out).eval()  # transformers: the base and its adapter
    assert torch.equal(_logits(plain, batch), _logits(model, batch))


def test_merged_model_reloads_with_plain_transformers(lora_run, batch) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    result, model = lora_run
    merged_dir = result.run_dir / "model_merged"
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    assert (_logits(merged, batch) - _logits(model, batch)).abs().max().item() < 1e-5
    assert AutoTokenizer.from_pretrained(merged_dir).chat_template
    assert GenerationConfig.from_pretrained(merged_dir).do_sample is False


def test_parameter_counts_are_mlflow_params(lora_run) -> None:
    from mlflow.tracking import MlflowClient

    result, model = lora_run
    client = MlflowClient(tracking_uri=f"sqlite:///{result.run_dir.parent / 'mlflow.db'}")
    params = client.get_run(result.run_id).data.params
    counts = count_params(model)
    assert (params["params/total"], params["params/trainable"]) == (str(counts.total), str(counts.trainable))


def test_full_export_is_sharded_above_the_limit(full_run, batch) -> None:
    from transformers import AutoModelForCausalLM

    result, model = full_run
    out = result.run_dir / "model"
    shards = sorted(out.glob("model-*.safetensors"))
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(shards) > 3 and set(index["weight_map"].values()) == {s.name for s in shards}
    assert all(s.stat().st_size < 400_000 for s in shards)
    loaded = AutoModelForCausalLM.from_pretrained(out).eval()
    assert torch.equal(_logits(loaded, batch), _logits(model, batch))


def test_dora_run_saves_and_reloads_to_the_same_logits(tmp_path: Path, batch) -> None:
    from peft import AutoPeftModelForCausalLM

    result, model = _train(tmp_path, "dora", "peft=dora", "tracker=none", "trainer.max_steps=2")
    adapter = json.loads((result.model_dir / "adapter_config.json").read_text())
    assert adapter["use_dora"] is True
    with safe_open(result.model_dir / "adapter_model.safetensors", "pt") as f:
        assert any("lora_magnitude_vector" in k for k in f.keys())
    loaded = AutoPeftModelForCausalLM.from_pretrained(result.model_dir).eval()
    assert torch.equal(_logits(loaded, batch), _logits(model, batch))
