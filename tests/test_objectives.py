"""Preference objectives end to end: the `objective` group's config errors, the reference model (no second
copy under LoRA), the metrics a run logs, `trainer plan`'s reference memory, `trainer evaluate` on a
preference run, and exact resume. The losses themselves are checked in test_objective_losses.py, the data
in test_preference_data.py.

Training runs are in-process `train()` calls on the tiny default with the shipped preference data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA, as_invocation, invocation, load_config, run_cli
from tests.test_rules import problems_of
from trainer.training.train import train

PREFS = ["data=tiny_prefs", "trainer.progress_bar=false", "tracker=none"]
QUICK = [*PREFS, "trainer.export_model=false", "trainer.val_every=4", "trainer.checkpoint_every=2"]


# ---- config --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["objective=sft", "+objective.beta=1"],
            "  objective.beta: is an option of objective=dpo or objective=orpo or objective=simpo or "
            "objective=kto, not objective=sft; remove it, or use objective=dpo or objective=orpo or "
            "objective=simpo or objective=kto",
        ),
        (
            ["objective=orpo", "data=tiny_prefs", "+objective.reference=copy"],
            "  objective.reference: is an option of objective=dpo or objective=kto, not objective=orpo; "
            "remove it, or use objective=dpo or objective=kto",
        ),
        (
            ["objective=dpo", "data=tiny_prefs", "objective.label_smoothing=0.5"],
            "  objective.label_smoothing=0.5: Input should be less than 0.5",
        ),
        (
            ["objective=dpo", "data=tiny_prefs", "objective.loss=ipo", "objective.label_smoothing=0.1"],
            "  objective.label_smoothing=0.1: label smoothing applies to the sigmoid (DPO) loss, not to "
            "IPO's squared loss; set objective.label_smoothing=0, or objective.loss=sigmoid",
        ),
        (
            ["objective=dpo"],
            "  objective=dpo: reads preference pairs (format.type=preference), but the data is SFT "
            "datasets (alpaca, chat, completion, input_output, pretokenized); use objective=sft for this "
            "data, or data of the right kind (data=tiny_prefs)",
        ),
        (
            ["data=tiny_prefs"],
            "  objective=sft: reads SFT datasets (alpaca, chat, completion, input_output, pretokenized), but "
            "the data is preference pairs (format.type=preference); use objective=dpo|orpo|simpo for this "
            "data, or data of the right kind (data=tiny_tasks)",
        ),
        (
            ["objective=dpo", "data=tiny_prefs", "objective.reference=adapters_off"],
            "  objective.reference=adapters_off: the reference is the policy with its LoRA adapters "
            "disabled, but peft=none trains no adapters; use peft=lora, or objective.reference=copy "
            "(a frozen copy of the starting weights)",
        ),
        (
            ["objective=dpo", "data=tiny_prefs", "parallelism=fsdp", "parallelism.accelerator=cpu"],
            "  objective.reference=copy: a frozen reference copy is not sharded under parallelism=fsdp yet, "
            "so every rank would hold the whole model twice; use peft=lora (the reference is the base with "
            "adapters off), or parallelism=ddp|single",
        ),
        (
            ["objective=kto", "data=tiny_kto", "objective.reference=precomputed"],
            "  objective.reference=precomputed: KTO's KL rows pair each prompt with another example's "
            "completion as the batch falls, so their reference log-probs cannot be computed ahead; use "
            "objective.reference=adapters_off (with peft=lora) or copy",
        ),
        (
            ["objective=kto", "data=tiny_kto", "data.micro_batch=1"],
            "  data.micro_batch=1: KTO estimates its KL term from prompts paired with another example's "
            "completion in the same micro batch, so it needs at least 2 examples per micro batch; use "
            "data.micro_batch=2 or more",
        ),
        (
            [
                "objective=dpo",
                "data=tiny_prefs",
                "trainer.keep_best=1",
                "trainer.best_metric=val/exact_match",
            ],
            "  trainer.best_metric=val/exact_match: objective=dpo validates on preference data, which has no "
            "exact match; use trainer.best_metric=val/loss, val/rewards/accuracy or val/rewards/margins",
        ),
        (
            ["trainer.keep_best=1", "trainer.best_metric=val/rewards/accuracy"],
            "  trainer.best_metric=val/rewards/accuracy: reward metrics come from preference objectives; "
            "objective=sft logs val/loss and val/exact_match; use trainer.best_metric=val/loss or "
            "val/exact_match",
        ),
    ],
)
def test_objective_config_errors(overrides: list[str], expected: str) -> None:
    assert expected in problems_of(overrides)


def test_a_run_folder_is_not_a_model_folder(tmp_path: Path) -> None:
    from trainer.errors import UserError
    from trainer.models.sources import check_model

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.yaml").write_text("{}")
    (run / "model" / "config.json").write_text("{}")
    cfg = load_config(["model=folder", f"model.name_or_path={run}"])
    with pytest.raises(UserError, match="a run folder, not a model folder") as info:
        check_model(cfg.model, weights=True)
    assert info.value.hint == f"use its exported model: model.name_or_path={run / 'model'}"
    (run / "model" / "adapter_config.json").write_text("{}")
    cfg = load_config(["model=folder", f"model.name_or_path={run / 'model'}"])
    with pytest.raises(UserError, match="a LoRA adapter folder; training starts from a whole model"):
        check_model(cfg.model, weights=True)


def test_plan_counts_the_reference_copy() -> None:
    from trainer.commands.plan import make_plan, render_rows

    def rows(*extra: str) -> str:
        plan = make_plan(as_invocation(load_config(list(extra))))
        return "\n".join(f"{a} {b}" for a, b in render_rows(plan))

    sft, dpo = rows(), rows("objective=dpo", "data=tiny_prefs")
    lora = rows("objective=dpo", "data=tiny_prefs", "peft=lora")
    params = 840_832  # the tiny model (trainer plan's own count)
    assert f"reference model: a frozen copy, {params * 4 / 2**20:.2f} MiB (4-byte)" in dpo
    assert "reference model: the base with adapters off, no second copy (0 B)" in lora
    pre = rows("objective=dpo", "data=tiny_prefs", "objective.reference=precomputed")
    assert "reference model: log-probs precomputed in one pass before the first step (0 B)" in pre
    assert "reference model" not in sft and "reference model" not in rows("objective=orpo", "data=tiny_prefs")
    assert "micro 32 x 128 tokens" in dpo  # 16 pairs = 32 rows


# ---- training --------------------------------------------------------------------------------------------


def _module(overrides: list[str]):
    from trainer.models.build import hf_config, load_tokenizer
    from trainer.parallel import for_config
    from trainer.training.module import CausalLMModule

    cfg = load_config(overrides)
    module = CausalLMModule(cfg, hf_config(cfg.model, load_tokenizer(cfg.model)), 10, for_config(cfg))
    module.configure_model()
    return module


def test_lora_dpo_keeps_no_second_copy_and_full_dpo_one_frozen_copy() -> None:
    lora = _module(["objective=dpo", "data=tiny_prefs", "peft=lora"])
    own = sum(p.numel() for p in lora.parameters())
    assert lora.preference.reference.kind == "adapters_off"
    assert lora.preference.reference.parameters() == 0
    assert own == sum(p.numel() for p in lora.model.parameters())  # nothing beside the policy
    full = _module(["objective=dpo", "data=tiny_prefs"])
    ref = full.preference.reference
    assert ref.kind == "copy" and ref.parameters() == sum(p.numel() for p in full.model.parameters())
    assert sum(p.numel() for p in full.parameters()) == ref.parameters()  # not registered, not trained
    assert not any(p.requires_grad for p in ref.model.parameters())
    for (name, a), (_, b) in zip(full.model.named_parameters(), ref.model.named_parameters(), strict=True):
        assert a.data_ptr() != b.data_ptr() and bool((a == b).all()), name  # equal values, own storage


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("objective", ["dpo", "orpo", "simpo", "kto"])
def test_each_objective_trains_logs_its_rewards_and_evaluate_reproduces_them(
    tmp_path: Path, objective: str
) -> None:
    data = "data=tiny_kto" if objective == "kto" else "data=tiny_prefs"
    cfg = load_config(
        [
            *QUICK,
            data,
            f"objective={objective}",
            "peft=lora",
            "trainer.max_steps=4",
            "trainer.log_every=1",
            f"run.output_root={tmp_path}",
            "run.name=r",
            "data.datasets.tiny_prefs.count=64" if objective != "kto" else "data.datasets.tiny_kto.count=64",
            "trainer.export_model=true",
        ],
        run_dir=tmp_path / "r",
    )
    result = train(cfg)
    rows = _metrics(tmp_path / "r")
    train_rows = [r for r in rows if "train/loss" in r]
    val = [r for r in rows if "val/loss" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"):
        assert all(f"train/{key}" in r for r in train_rows), key
        assert f"val/{key}" in val[-1], key
    if objective != "kto":
        assert 0 <= val[-1]["val/rewards/accuracy"] <= 1
    assert "val/exact_match" not in val[-1]
    assert result.val_loss == pytest.approx(val[-1]["val/loss"])
    if objective in ("dpo", "kto"):  # the policy starts as the reference: every reward is 0 at step 0
        assert val[0]["step"] == 0
        assert val[0]["val/rewards/chosen"] == 0 and val[0]["val/rewards/margins"] == 0

    # `trainer evaluate` on the run folder: the same step, batches and means as the final validation.
    from trainer.commands.evaluate import evaluate

    scores = evaluate(invocation([f"infer.source={tmp_path / 'r'}"], "trainer evaluate"))
    got = scores.metrics("validation")
    for key, value in val[-1].items():
        if key.startswith("val/"):
            assert got[f"eval/{key[4:]}"] == pytest.approx(value, abs=1e-5), key


def test_resume_with_a_reference_copy_is_exact(tmp_path: Path) -> None:
    """Full-fine-tuning DPO from scratch: on resume the frozen reference is built again (seeded), not
    read from the checkpoint, and must be the same starting model for the run to end where it would.
    A precomputed reference gives the same run as the copy, its table travels in the checkpoints (on
    resume the policy is no longer the starting model), and `trainer evaluate` computes it again."""
    import torch

    def run(name: str, *extra: str):
        cfg = load_config(
            [
                *QUICK,
                "objective=dpo",
                "data.datasets.tiny_prefs.count=96",
                "trainer.max_steps=8",
                f"run.output_root={tmp_path}",
                f"run.name={name}",
                *extra,
            ],
            run_dir=tmp_path / name,
        )
        return train(cfg)

    straight = run("straight")
    resumed = run("resumed", f"run.resume={tmp_path / 'straight' / 'checkpoints' / 'step-000004.ckpt'}")
    assert resumed.val_loss == pytest.approx(straight.val_loss, abs=1e-6)
    assert resumed.metrics["train/loss"] == pytest.approx(straight.metrics["train/loss"], abs=1e-6)
    assert resumed.metrics["val/rewards/margins"] == pytest.approx(
        straight.metrics["val/rewards/margins"], abs=1e-6
    )
    other = run("other", "run.seed=7")  # another starting model (and reference): the check can fail
    assert other.val_loss != pytest.approx(straight.val_loss, abs=1e-6)

    pre = run("pre", "objective.reference=precomputed", "trainer.export_model=true")
    for key in ("val/loss", "train/loss", "val/rewards/margins", "val/rewards/accuracy"):
        assert pre.metrics[key] == pytest.approx(straight.metrics[key], abs=1e-5), key
    ckpt = tmp_path / "pre" / "checkpoints" / "step-000004.ckpt"
    table = torch.load(ckpt, weights_only=False)["reference_logps"]
    assert table["logps"].shape == (96 + 240, 2) and bool((table["logps"] < 0).all())
    again = run("pre-resumed", "objective.reference=precomputed", f"run.resume={ckpt}")
    assert again.val_loss == pytest.approx(pre.val_loss, abs=1e-6)
    from trainer.commands.evaluate import evaluate

    got = evaluate(invocation([f"infer.source={tmp_path / 'pre'}"], "trainer evaluate")).metrics("validation")
    assert got["eval/loss"] == pytest.approx(pre.val_loss, abs=1e-5)
    assert got["eval/rewards/margins"] == pytest.approx(pre.metrics["val/rewards/margins"], abs=1e-5)


def _hh_records(n: int) -> list[dict]:
    """Anthropic HH's layout (one text per side, the prompt their common start), made from real Alpaca
    instructions when ../shared/data has them: chosen = the record's own answer, rejected = the next one's."""
    source = SHARED_DATA / "alpaca_en_demo.json"
    if source.exists():
        rows = json.loads(source.read_text())[: n + 1]
        pairs = [
            (r["instruction"], r["output"][:300], rows[i + 1]["output"][:300]) for i, r in enumerate(rows[:n])
        ]
    else:
        pairs = [(f"Name the number after {i}.", f"It is {i + 1}.", f"It is {i + 7}.") for i in range(n)]
    return [
        {"chosen": f"\n\nHuman: {q}\n\nAssistant: {good}", "rejected": f"\n\nHuman: {q}\n\nAssistant: {bad}"}
        for q, good, bad in pairs
    ]


def test_dpo_from_the_command_line_on_a_public_layout_and_a_local_tokenizer_folder(tmp_path: Path) -> None:
    """`python -m trainer objective=dpo peft=lora` on an HH-layout JSONL file, with Llama 2's tokenizer from
    a local folder (the project's own tokenizer when ../shared/data is absent); the adapter loads with
    plain PEFT."""
    tokenizer = tmp_path / "tokenizer"
    llama = SHARED_DATA / "llama2-tokenizer.model"
    if llama.exists():
        from transformers import LlamaTokenizer

        tokenizer.mkdir()
        (tokenizer / "tokenizer.model").write_bytes(llama.read_bytes())
        LlamaTokenizer.from_pretrained(tokenizer, add_bos_token=True).save_pretrained(tokenizer)
    else:
        tokenizer = Path(load_config().model.tokenizer_source)
    data = tmp_path / "hh.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _hh_records(40)))
    fmt = "{type:preference,template:none,prompt:null,chosen:chosen,rejected:rejected}"
    proc = run_cli(
        [
            "objective=dpo",
            "peft=lora",
            "data=tiny_prefs",
            "~data.datasets.tiny_prefs",
            "data.validation=null",
            f"+data.datasets.hh={{path:{data},format:{fmt}}}",
            "data.val_count=8",
            "data.sequence_len=256",
            "data.micro_batch=4",
            "data.global_batch=8",
            "data.eval_batch=8",
            f"model.tokenizer={tokenizer}",
            "trainer.max_steps=3",
            "trainer.val_every=3",
            "tracker=none",
            f"run.output_root={tmp_path}",
            "run.name=hh",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _metrics(tmp_path / "default" / "hh")
    assert [r["step"] for r in rows if "val/rewards/accuracy" in r] == [0, 3]
    from peft import AutoPeftModelForCausalLM

    model = AutoPeftModelForCausalLM.from_pretrained(tmp_path / "default" / "hh" / "model")
    assert model.get_input_embeddings().num_embeddings == (32000 if llama.exists() else 384)
