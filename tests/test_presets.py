"""Model presets and model options: every conf/model preset plans offline with its published size, the
rules know each preset's limits, and compile / added_tokens / trust_remote_code / local folders work.

No test downloads anything: hub presets are counted on the meta device from the built-in architectures
in trainer/config/presets.py, and "pretrained" models are tiny random ones saved to a temporary folder.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import CONF, ROOT, load_config, run_cli
from trainer.config import ConfigError
from trainer.config.peft import LoraConfig
from trainer.config.presets import HUB_PRESETS
from trainer.errors import UserError
from trainer.models.build import build_model, hf_config, load_tokenizer
from trainer.models.estimate import preset_config

TOKENIZER = ROOT / "trainer" / "assets" / "tokenizer"

# preset -> (hub id, total parameters as published on the model card)
PUBLISHED = {
    "llama3_2_1b": ("meta-llama/Llama-3.2-1B", 1_235_814_400),
    "llama3_1_8b": ("meta-llama/Llama-3.1-8B", 8_030_261_248),
    "llama2_7b": ("meta-llama/Llama-2-7b-hf", 6_738_415_616),
    "mistral_7b": ("mistralai/Mistral-7B-v0.1", 7_241_732_096),
    "qwen2_5_0_5b": ("Qwen/Qwen2.5-0.5B", 494_032_768),
    "qwen2_5_7b": ("Qwen/Qwen2.5-7B", 7_615_616_512),
    "gemma2_2b": ("google/gemma-2-2b", 2_614_341_888),
    "phi3_mini": ("microsoft/Phi-3-mini-4k-instruct", 3_821_079_552),
}


def problems_of(overrides: list[str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(overrides)
    return [p.render() for p in info.value.problems]


# --- presets -----------------------------------------------------------------------------------------


def test_every_hub_preset_is_known_and_tested() -> None:
    files = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((CONF / "model").glob("*.yaml"))}
    # `llama` is a short name: a defaults entry pointing at llama3_2_1b.
    assert files.pop("llama") == {"defaults": ["llama3_2_1b"]}
    # tiny is built from its shape; folder is a local folder of one's own (test_config composes it).
    hub_presets = {
        name: body["name_or_path"] for name, body in files.items() if name not in ("tiny", "folder")
    }
    assert hub_presets == {name: hub for name, (hub, _) in PUBLISHED.items()}
    assert set(HUB_PRESETS) == set(hub_presets.values())


@pytest.mark.parametrize("preset", sorted(PUBLISHED))
def test_preset_composes_validates_and_plans_the_published_size(preset: str, tmp_path: Path) -> None:
    from tests.conftest import as_invocation
    from trainer.commands.plan import make_plan

    hub_id, total = PUBLISHED[preset]
    cfg = load_config([f"model={preset}"], tmp_path)
    assert cfg.model.name_or_path == hub_id and not cfg.model.trust_remote_code
    plan = make_plan(as_invocation(cfg))
    assert (plan.params.total, plan.params.trainable) == (total, total)
    arch = HUB_PRESETS[hub_id]
    config = preset_config(hub_id)
    assert type(config).__name__ == arch.config_class
    assert config.model_type == arch.config_json["model_type"]
    assert config.max_position_embeddings == arch.max_position_embeddings


@pytest.mark.slow
def test_plan_cli_counts_a_new_preset_offline(tmp_path: Path) -> None:
    proc = run_cli(["plan", "model=qwen2_5_7b", "peft=lora"], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"total ([\d,]+), trainable ([\d,]+)", proc.stdout)
    assert m and int(m.group(1).replace(",", "")) > 7_615_616_512 > int(m.group(2).replace(",", "")) > 0
    assert "Qwen/Qwen2.5-7B: built-in preset" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_sequence_len_is_checked_against_a_preset() -> None:
    assert problems_of(["model=phi3_mini", "data.sequence_len=8192"]) == [
        "  data.sequence_len=8192: longer than the model's max_position_embeddings=4096 "
        "(microsoft/Phi-3-mini-4k-instruct, built-in preset); use data.sequence_len<=4096"
    ]
    assert load_config(["model=phi3_mini", "data.sequence_len=4096"]).data.sequence_len == 4096


def test_gemma2_needs_an_attention_kernel_with_soft_capping(tmp_path: Path) -> None:
    assert problems_of(["model=gemma2_2b", "model.attn_implementation=sdpa"]) == [
        "  model.attn_implementation=sdpa: Gemma 2 soft-caps attention logits (google/gemma-2-2b, "
        "built-in preset), which sdpa does not support; use model.attn_implementation=eager "
        "(or flash_attention_2 on CUDA)"
    ]
    uncapped = {"model_type": "gemma2", "attn_logit_softcapping": None}
    (tmp_path / "config.json").write_text(json.dumps(uncapped))
    local = [f"model.name_or_path={tmp_path}", "model.attn_implementation=sdpa"]
    assert load_config(["model=gemma2_2b", *local]).model.attn_implementation == "sdpa"


# --- a preset pointed at a local folder ----------------------------------------------------------------


def _tiny_qwen2_folder(folder: Path) -> torch.nn.Module:
    """A Qwen2 with the preset's quirks (q/k/v bias, GQA, tied embeddings) at toy size, saved like a hub
    download: config.json + safetensors + a tokenizer. The tokenizer is the project's, saved once through
    Qwen2Tokenizer (which transformers picks for a qwen2 folder, and which adds its <|endoftext|>)."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    shutil.copytree(TOKENIZER, folder)
    shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
    config = Qwen2Config(
        **shape, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True
    )
    config.save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.save_pretrained(folder)
    config.vocab_size = len(tok)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(folder)
    return model


def test_preset_pointed_at_a_local_folder_loads_it(tmp_path: Path) -> None:
    from tests.conftest import as_invocation
    from trainer.commands.plan import make_plan

    folder = tmp_path / "qwen"
    saved = _tiny_qwen2_folder(folder)
    cfg = load_config(["model=qwen2_5_0_5b", f"model.name_or_path={folder}", "model.dtype=float32"])
    tok = load_tokenizer(cfg.model)
    model = build_model(cfg.model, hf_config(cfg.model, tok))
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.model.layers[0].self_attn.q_proj.bias is not None
    for (name, a), b in zip(model.state_dict().items(), saved.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    ids = torch.tensor([tok("hello world").input_ids])
    assert model(input_ids=ids, labels=ids, use_cache=False).loss.isfinite()
    assert make_plan(as_invocation(cfg)).params.total == sum(p.numel() for p in model.parameters())
    # the folder's config.json, not the preset, is what the position rule reads now
    too_long = ["model=qwen2_5_0_5b", f"model.name_or_path={folder}", "data.sequence_len=600"]
    assert any("max_position_embeddings=512" in line for line in problems_of(too_long))


def test_folder_with_its_own_code_asks_for_trust_remote_code(tmp_path: Path) -> None:
    auto_map = {"AutoConfig": "configuration_mine.MineConfig", "AutoModelForCausalLM": "modeling_mine.Mine"}
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mine_lm", "auto_map": auto_map}))
    cfg = load_config(["model=llama", f"model.name_or_path={tmp_path}"])
    expected = (
        f"model.name_or_path={tmp_path}: this model ships its own code (auto_map in config.json); "
        "set model.trust_remote_code=true if you trust it"
    )
    with pytest.raises(UserError) as info:
        hf_config(cfg.model, None)
    assert info.value.message == expected
    with pytest.raises(UserError) as info:
        build_model(cfg.model, None)
    assert info.value.message == expected


# --- added tokens ----------------------------------------------------------------------------------------

ADDED = "model.added_tokens=['<|tool|>','frobnicate']"


def test_added_tokens_encode_to_one_id_and_grow_the_embeddings() -> None:
    cfg = load_config([ADDED])
    tok = load_tokenizer(cfg.model)
    assert len(tok) == 384 + 2
    ids = [tok(t, add_special_tokens=False).input_ids for t in cfg.model.added_tokens]
    assert ids == [[384], [385]]
    assert tok.decode([384, 385], skip_special_tokens=True) == "frobnicate"  # <|tool|> is special
    model = build_model(cfg.model, hf_config(cfg.model, tok))
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    batch = torch.tensor([tok("<|tool|> call frobnicate now").input_ids])
    loss = model(input_ids=batch, labels=batch, use_cache=False).loss
    loss.backward()
    grad = model.get_input_embeddings().weight.grad
    assert loss.isfinite() and grad[384].abs().sum() > 0 and grad[385].abs().sum() > 0


def test_added_tokens_resize_pretrained_weights_and_train_with_lora(tmp_path: Path) -> None:
    from trainer.models.peft import apply_peft

    folder = tmp_path / "qwen"
    saved = _tiny_qwen2_folder(folder)
    cfg = load_config(["model=qwen2_5_0_5b", f"model.name_or_path={folder}", "model.dtype=float32", ADDED])
    tok = load_tokenizer(cfg.model)
    model = build_model(cfg.model, hf_config(cfg.model, tok))
    embeddings = model.get_input_embeddings().weight
    before = saved.get_input_embeddings().weight
    assert embeddings.shape[0] == model.lm_head.weight.shape[0] == len(tok) == before.shape[0] + 2
    assert torch.equal(embeddings[: before.shape[0]], before)
    new_ids = tok.convert_tokens_to_ids(["<|tool|>", "frobnicate"])
    assert new_ids == [before.shape[0], before.shape[0] + 1]
    lora = apply_peft(model, LoraConfig(r=4, modules_to_save=["embed_tokens", "lm_head"]))
    batch = torch.tensor([tok("<|tool|> frobnicate it").input_ids])  # not last: the last input has no label
    lora(input_ids=batch, labels=batch, use_cache=False).loss.backward()
    trained = [p for n, p in lora.named_parameters() if "embed_tokens" in n and p.requires_grad]
    assert trained and trained[0].grad[new_ids].abs().sum(dim=1).min() > 0


def test_added_tokens_with_lora_need_the_embeddings_trained() -> None:
    assert problems_of(["model=llama", "peft=lora", ADDED]) == [
        "  model.added_tokens=['<|tool|>', 'frobnicate']: peft=lora freezes the embeddings, so the added "
        "tokens' new rows would never train; set peft.modules_to_save=[embed_tokens,lm_head]"
    ]
    saved = load_config(["model=llama", "peft=lora", ADDED, "peft.modules_to_save=[embed_tokens,lm_head]"])
    assert saved.peft.modules_to_save == ["embed_tokens", "lm_head"]
    assert saved.model.added_tokens == ["<|tool|>", "frobnicate"]
    # full fine-tuning trains the embeddings anyway
    assert load_config(["model=llama", ADDED]).model.added_tokens == ["<|tool|>", "frobnicate"]


def test_added_tokens_listed_twice_are_rejected() -> None:
    assert problems_of(["model.added_tokens=[foo,foo]"]) == [
        "  model.added_tokens=['foo', 'foo']: 'foo' is listed twice; list each token once"
    ]


def test_plan_of_a_hub_preset_says_added_rows_are_not_counted(tmp_path: Path) -> None:
    from tests.conftest import as_invocation
    from trainer.commands.plan import make_plan

    cfg = load_config(
        ["model=llama", "peft=lora", ADDED, "peft.modules_to_save=[embed_tokens,lm_head]"], tmp_path
    )
    plan = make_plan(as_invocation(cfg))
    assert plan.params is not None
    assert any("up to 2 model.added_tokens" in note for note in plan.notes)


# --- compile -----------------------------------------------------------------------------------------------


def _compiled_and_plain(folder: Path) -> tuple[torch.nn.Module, set[str], set[str]]:
    """The tiny model built with model.compile=true, the same model's parameter names uncompiled, and the
    keys save_pretrained writes for the uncompiled one."""
    cfg = load_config(["model.compile=true"])
    tok = load_tokenizer(cfg.model)
    model = build_model(cfg.model, hf_config(cfg.model, tok))
    plain = build_model(load_config().model, hf_config(cfg.model, tok))
    return model, set(plain.state_dict()), _saved_keys(plain, folder / "plain")


def _saved_keys(model: torch.nn.Module, folder: Path) -> set[str]:
    from safetensors import safe_open

    model.save_pretrained(folder)
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return set(f.keys())


def test_compile_flag_compiles_in_place_and_saves_the_same_keys(tmp_path: Path) -> None:
    """Compilation is lazy, so this is cheap: the flag reached build_model and the module is unchanged."""
    model, names, saved = _compiled_and_plain(tmp_path)
    assert model._compiled_call_impl is not None
    assert set(model.state_dict()) == names
    assert _saved_keys(model, tmp_path / "compiled") == saved


def test_compiled_forward_traces_with_a_cheap_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dynamo traces the training forward (use_cache=False, labels) of the in-place compiled model; the
    eager backend skips inductor's code generation, which takes minutes on a small CPU."""
    import functools

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    model, names, saved = _compiled_and_plain(tmp_path)
    ids = torch.tensor([[1, 5, 9, 12, 7]])
    loss = model(input_ids=ids, labels=ids, use_cache=False).loss
    loss.backward()
    assert loss.isfinite() and model.get_input_embeddings().weight.grad is not None
    assert _saved_keys(model, tmp_path / "compiled") == saved


@pytest.mark.slow
def test_compiled_model_trains_and_saves(tmp_path: Path) -> None:
    """The real inductor compile: about two minutes on a 2-core CPU, hence slow."""
    model, names, saved = _compiled_and_plain(tmp_path)
    ids = torch.tensor([[1, 5, 9, 12, 7]])
    loss = model(input_ids=ids, labels=ids, use_cache=False).loss
    loss.backward()
    assert loss.isfinite() and model.get_input_embeddings().weight.grad is not None
    assert set(model.state_dict()) == names
    assert _saved_keys(model, tmp_path / "compiled") == saved
