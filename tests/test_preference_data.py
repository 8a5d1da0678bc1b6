"""Preference pairs and KTO examples: encoding, markers, lengths, bad records, collators, the data
pipeline on public layouts, the config rules and the shipped sets. No training.

Every mask check runs on the project's own tokenizer and, when /work/shared/data has it, on Llama 2's
SentencePiece tokenizer (bos first, a template-less tokenizer: chat goes through the shipped chatml).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer

from tests.conftest import ROOT, SHARED_DATA, load_config, run_cli
from trainer.assets import asset_path
from trainer.config import ConfigError
from trainer.config.data import DataConfig
from trainer.config.dataset import AlpacaFormat, ChatFormat, KtoFormat, PreferenceFormat
from trainer.data.chat_templates import resolve_chat_template
from trainer.data.collate import KtoCollator, PairCollator
from trainer.data.debug_view import parts, show_example
from trainer.data.encoded import DESIRABLE, IGNORE, PAIR_START, UNDESIRABLE, EncodeOptions
from trainer.data.formats import encode_dataset, generation_prompt_ids
from trainer.data.prepare import prepare_data
from trainer.errors import UserError

KEY = "data.datasets.demo"
LLAMA = SHARED_DATA / "llama2-tokenizer.model"


@pytest.fixture(scope="module", params=["tiny", "llama2"])
def tok(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if request.param == "tiny":
        return AutoTokenizer.from_pretrained(asset_path("tokenizer"))
    if not LLAMA.exists():
        pytest.skip(f"no {LLAMA}")
    pytest.importorskip("sentencepiece")
    from transformers import LlamaTokenizer

    folder = tmp_path_factory.mktemp("llama2-tok")
    shutil.copy(LLAMA, folder / "tokenizer.model")
    return LlamaTokenizer.from_pretrained(str(folder), add_bos_token=True)


@pytest.fixture(scope="module")
def tiny() -> Any:
    return AutoTokenizer.from_pretrained(asset_path("tokenizer"))


def opts(tok: Any, **kw: Any) -> EncodeOptions:
    base: dict[str, Any] = dict(sequence_len=4096, too_long="error", train_on_inputs=False)
    base.update(kw)
    # The tiny tokenizer ships a template; Llama 2's file has none, so chat uses the shipped chatml.
    template = "auto" if tok.chat_template else "chatml"
    return EncodeOptions(chat_template=resolve_chat_template(template, tok), **base)


def encode(records: list[dict], fmt: Any, tok: Any, **kw: Any) -> tuple[list[dict], Any]:
    return encode_dataset(records, fmt, tok, opts(tok, **kw), KEY)


def halves(example: dict) -> tuple[dict, dict]:
    """(chosen, rejected) of a pair, cut at PAIR_START, which must occur exactly once."""
    labels = list(example["labels"])
    assert labels.count(PAIR_START) == 1
    cut = labels.index(PAIR_START)
    ids = list(example["input_ids"])
    return {"input_ids": ids[:cut], "labels": labels[:cut]}, {"input_ids": ids[cut:], "labels": labels[cut:]}


def sft(record: dict, fmt: Any, tok: Any) -> dict:
    (example,), _ = encode([record], fmt, tok)
    return {"input_ids": list(example["input_ids"]), "labels": list(example["labels"])}


def plain(prompt: str, response: str, tok: Any) -> dict:
    """What template none must give: prompt with special tokens untrained, response + eos trained."""
    p = tok(prompt, add_special_tokens=True)["input_ids"]
    r = tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return {"input_ids": p + r, "labels": [IGNORE] * len(p) + r}


def with_marker(rejected: dict) -> dict:
    return {"input_ids": rejected["input_ids"], "labels": [PAIR_START, *rejected["labels"][1:]]}


PAIR = {"instruction": "Reverse the letters.", "input": "a b c", "chosen": "c b a", "rejected": "a c b"}
ALPACA_SHORT = PreferenceFormat(template="alpaca_short", prompt="instruction")


# --- masks, token by token -------------------------------------------------------------------------------


def test_template_none_is_prompt_then_response(tok: Any) -> None:
    (pair,), stats = encode(
        [{"prompt": "Say yes:", "chosen": " yes", "rejected": " no"}], PreferenceFormat(template="none"), tok
    )
    chosen, rejected = halves(pair)
    assert chosen == plain("Say yes:", " yes", tok)
    assert rejected == with_marker(plain("Say yes:", " no", tok))
    assert (stats.read, stats.kept, stats.tokens) == (1, 1, len(pair["input_ids"]))
    assert stats.trained_tokens == sum(1 for t in pair["labels"] if t >= 0)


def test_alpaca_short_halves_equal_the_sft_examples(tok: Any) -> None:
    """A model SFT-trained on alpaca_short sees the same prompt ids in DPO."""
    (pair,), _ = encode([PAIR], ALPACA_SHORT, tok)
    chosen, rejected = halves(pair)
    fmt = AlpacaFormat(template="alpaca_short")
    assert chosen == sft({**PAIR, "output": PAIR["chosen"]}, fmt, tok)
    assert rejected == with_marker(sft({**PAIR, "output": PAIR["rejected"]}, fmt, tok))
    assert pair["labels"].index(PAIR_START) == len(chosen["input_ids"])
    assert tok.decode([t for t in chosen["labels"] if t >= 0]).strip() == "c b a" + tok.eos_token


def test_alpaca_with_system_and_input(tok: Any) -> None:
    record = {**PAIR, "system": "Be exact."}
    fmt = PreferenceFormat(template="alpaca", prompt="instruction")
    chosen, _ = halves(encode([record], fmt, tok)[0][0])
    assert chosen == sft({**record, "output": PAIR["chosen"]}, AlpacaFormat(template="alpaca"), tok)


def test_chat_text_prompt_equals_the_chat_example(tok: Any) -> None:
    record = {"prompt": "Hi there", "chosen": "Hello!", "rejected": "Go away.", "system": "Be kind."}
    chosen, rejected = halves(encode([record], PreferenceFormat(), tok)[0][0])
    msgs = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi there"}]
    assert chosen == sft({"messages": [*msgs, {"role": "assistant", "content": "Hello!"}]}, ChatFormat(), tok)
    expected = sft({"messages": [*msgs, {"role": "assistant", "content": "Go away."}]}, ChatFormat(), tok)
    assert rejected == with_marker(expected)


def test_chat_message_lists_train_only_the_last_assistant_turn(tok: Any) -> None:
    """UltraFeedback binarized: chosen/rejected are [user, assistant] lists; earlier assistant turns in
    them are prompt, not trained."""
    history = [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another?"},
    ]
    record = {
        "prompt": "Another?",
        "chosen": [*history, {"role": "assistant", "content": "Red."}],
        "rejected": [*history, {"role": "assistant", "content": "No."}],
    }
    chosen, rejected = halves(encode([record], PreferenceFormat(), tok)[0][0])
    as_sft = sft({"messages": record["chosen"]}, ChatFormat(), tok)
    assert chosen["input_ids"] == as_sft["input_ids"]
    trained = tok.decode([t for t in chosen["labels"] if t >= 0])
    assert "Red." in trained and "Blue." not in trained  # SFT would train both assistant turns
    assert "Blue." in tok.decode([t for t in as_sft["labels"] if t >= 0])
    assert "No." in tok.decode([t for t in rejected["labels"] if t >= 0])


def test_prompt_null_takes_the_common_start_cut_at_a_word(tok: Any) -> None:
    """Anthropic HH: the prompt is the common start, cut back to before the word where they part
    (chosen 'Hello there' and rejected 'Hey' share 'He')."""
    hh = "\n\nHuman: Greet me.\n\nAssistant:"
    record = {"chosen": hh + " Hello there", "rejected": hh + " Hey"}
    chosen, rejected = halves(encode([record], PreferenceFormat(template="none", prompt=None), tok)[0][0])
    assert chosen == plain(hh, " Hello there", tok)
    assert rejected == with_marker(plain(hh, " Hey", tok))


# --- lengths and drops -----------------------------------------------------------------------------------


def long_pair() -> dict:
    return {**PAIR, "rejected": " ".join(["x"] * 60)}


def test_too_long_is_per_sequence(tok: Any) -> None:
    (pair,), _ = encode([PAIR, long_pair()][:1], ALPACA_SHORT, tok)
    chosen, _ = halves(pair)
    limit = len(chosen["input_ids"]) + 2  # both halves of PAIR fit; long_pair's rejected half does not
    kept, stats = encode([PAIR, long_pair()], ALPACA_SHORT, tok, sequence_len=limit, too_long="drop")
    assert len(kept) == 1 and stats.dropped == {"too_long": 1} and (stats.read, stats.kept) == (2, 1)
    kept, stats = encode([PAIR, long_pair()], ALPACA_SHORT, tok, sequence_len=limit, too_long="truncate")
    assert len(kept) == 2 and stats.truncated == 1 and stats.dropped == {}
    c, r = halves(kept[1])
    assert c == chosen and len(r["input_ids"]) == limit
    full = halves(encode([long_pair()], ALPACA_SHORT, tok)[0][0])[1]
    assert r["input_ids"] == full["input_ids"][:limit] and r["labels"][1:] == full["labels"][1:limit]
    with pytest.raises(UserError) as err:
        encode([PAIR, long_pair()], ALPACA_SHORT, tok, sequence_len=limit, too_long="error")
    n = len(full["input_ids"])
    assert (
        err.value.message
        == f"{KEY}: example 1 (rejected) has {n} tokens, more than data.sequence_len={limit}"
    )


def test_a_prompt_that_fills_the_sequence_drops_the_pair_even_under_truncate(tok: Any) -> None:
    record = {**PAIR, "instruction": " ".join(["word"] * 80)}
    kept, stats = encode([record, PAIR], ALPACA_SHORT, tok, sequence_len=40, too_long="truncate")
    assert len(kept) == 1 and stats.dropped == {"too_long": 1} and stats.truncated == 0


def test_identical_pairs_are_dropped_and_counted(tiny: Any) -> None:
    same = {**PAIR, "rejected": PAIR["chosen"]}
    kept, stats = encode([same, PAIR, same], ALPACA_SHORT, tiny)
    assert len(kept) == 1 and stats.dropped == {"identical": 2} and stats.read == 3
    assert stats.describe_drops() == "2 chosen and rejected identical"
    hh = {"chosen": "Human: hi Assistant: yo", "rejected": "Human: hi Assistant: yo"}
    assert encode([hh], PreferenceFormat(prompt=None, template="none"), tiny)[1].dropped == {"identical": 1}


# --- bad records -----------------------------------------------------------------------------------------

COMMON = ": with no prompt field the prompt is the common start of chosen and rejected,"
BAD: dict[str, tuple[Any, dict, str]] = {
    "missing_chosen": (
        ALPACA_SHORT,
        {"instruction": "x", "rejected": "b"},
        "has no text or message list in field 'chosen' (missing)",
    ),
    "chosen_a_number": (
        ALPACA_SHORT,
        {**PAIR, "chosen": 3},
        "has no text or message list in field 'chosen' (a number)",
    ),
    "not_an_object": (ALPACA_SHORT, ["a", "b"], "is a list, not an object with named fields"),
    "no_prompt_field": (
        PreferenceFormat(),
        {"chosen": "a", "rejected": "b"},
        "has no prompt: field 'prompt' is missing, expected text or a message list",
    ),
    "list_needs_chat": (
        ALPACA_SHORT,
        {**PAIR, "chosen": [{"role": "assistant", "content": "c"}]},
        ": field 'chosen' is a message list, which only template chat renders",
    ),
    "no_assistant": (
        PreferenceFormat(),
        {"prompt": "p", "chosen": [{"role": "user", "content": "u"}], "rejected": "r"},
        ": the message list in field 'chosen' has no assistant message to learn",
    ),
    "after_assistant": (
        PreferenceFormat(),
        {
            "prompt": "p",
            "chosen": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "u"}],
            "rejected": "r",
        },
        ": the message list in field 'chosen' goes on after its last assistant message (with a user "
        "message); the response must be the last message",
    ),
    "prompts_differ": (
        PreferenceFormat(),
        {
            "chosen": [{"role": "user", "content": "A?"}, {"role": "assistant", "content": "a"}],
            "rejected": [{"role": "user", "content": "B?"}, {"role": "assistant", "content": "b"}],
        },
        ": the messages before the last assistant message differ between 'chosen' and 'rejected'; a pair "
        "compares two responses to the same prompt",
    ),
    "prefix_of_other": (
        PreferenceFormat(prompt=None, template="none"),
        {"chosen": "Q: hi A: yes", "rejected": "Q: hi A:"},
        f"{COMMON} but one of them is the start of the other, so one response would be empty",
    ),
    "no_common_word": (
        PreferenceFormat(prompt=None, template="none"),
        {"chosen": "yes", "rejected": "no"},
        f"{COMMON} but they have no whole word in common at the start",
    ),
    "kto_label_text": (
        KtoFormat(),
        {"prompt": "p", "completion": "c", "label": "yes"},
        ": field 'label' is a string ('yes'), expected true (desirable) or false (undesirable)",
    ),
    "kto_label_number": (
        KtoFormat(),
        {"prompt": "p", "completion": "c", "label": 1},
        ": field 'label' is a number (1), expected true (desirable) or false (undesirable)",
    ),
    "kto_label_missing": (
        KtoFormat(),
        {"prompt": "p", "completion": "c"},
        ": field 'label' is missing, expected true (desirable) or false (undesirable)",
    ),
    "kto_no_completion": (
        KtoFormat(),
        {"prompt": "p", "label": True},
        " has no text or message list in field 'completion' (missing)",
    ),
    "kto_prompt_null_text": (
        KtoFormat(prompt=None),
        {"completion": "c", "label": True},
        ": no prompt: format.prompt is null and field 'completion' carries no messages before the completion",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_record_message(name: str, tiny: Any) -> None:
    fmt, record, expected = BAD[name]
    with pytest.raises(UserError) as err:
        encode([record], fmt, tiny)
    assert err.value.message.startswith(f"{KEY}: example 0")
    assert err.value.message.endswith(expected), err.value.message
    assert err.value.hint


# --- KTO -------------------------------------------------------------------------------------------------

KTO_FMT = KtoFormat(template="alpaca_short", prompt="instruction")
KTO = [
    {"instruction": "Add the two numbers.", "input": "2 + 3", "completion": "5", "label": True},
    {
        "instruction": "Sort the letters alphabetically.",
        "input": "c a b",
        "completion": "c b a",
        "label": False,
    },
    {"instruction": "What is the first letter?", "input": "q r", "completion": "q", "label": True},
]


def test_kto_examples_carry_their_verdict_at_position_0(tok: Any) -> None:
    examples, stats = encode(KTO, KTO_FMT, tok)
    assert stats.kept == 3
    for record, ex in zip(KTO, examples, strict=True):
        expected = sft({**record, "output": record["completion"]}, AlpacaFormat(template="alpaca_short"), tok)
        assert ex["input_ids"] == expected["input_ids"]
        assert ex["labels"] == [DESIRABLE if record["label"] else UNDESIRABLE, *expected["labels"][1:]]
    assert stats.trained_tokens == sum(sum(1 for t in e["labels"] if t >= 0) for e in examples)


def test_kto_collator_kl_rows_pair_each_prompt_with_the_previous_completion(tok: Any) -> None:
    examples, _ = encode(KTO, KTO_FMT, tok)
    fmt = AlpacaFormat(template="alpaca_short")
    split = []  # (prompt ids, completion ids) per example
    for record in KTO:
        e = sft({**record, "output": record["completion"]}, fmt, tok)
        start = next(i for i, t in enumerate(e["labels"]) if t != IGNORE)
        split.append((e["input_ids"][:start], e["input_ids"][start:]))
    batch = KtoCollator(tok.pad_token_id or 0, sequence_len=4096)(examples)
    b = len(KTO)
    assert batch["input_ids"].shape[0] == 2 * b
    assert batch["desirable"].tolist() == [True, False, True]
    for i in range(b):
        prompt, _ = split[i]
        _, other = split[(i - 1) % b]
        n = len(prompt) + len(other)
        assert batch["input_ids"][b + i, :n].tolist() == prompt + other
        assert batch["labels"][b + i, :n].tolist() == [IGNORE] * len(prompt) + other
        assert (batch["labels"][b + i, n:] == IGNORE).all() and batch["attention_mask"][b + i].sum() == n
        row = examples[i]
        m = len(row["input_ids"])
        assert batch["input_ids"][i, :m].tolist() == row["input_ids"]
        assert batch["labels"][i, :m].tolist() == [IGNORE, *row["labels"][1:]]  # the marker is gone
    assert batch["real_tokens"] == batch["attention_mask"].sum()
    short = KtoCollator(0, sequence_len=len(split[1][0]) + 1)(examples)  # KL row 1: prompt 1 + 1 token
    assert short["attention_mask"][b + 1].sum() == len(split[1][0]) + 1


def test_pair_collator_layout(tiny: Any) -> None:
    records = [PAIR, {**PAIR, "chosen": "c b a, surely", "rejected": "b"}]
    pairs, _ = encode(records, ALPACA_SHORT, tiny)
    pad = tiny.pad_token_id
    batch = PairCollator(pad)(pairs)
    assert batch["pairs"].item() == 2 and batch["input_ids"].shape[0] == 4
    rows = [halves(p)[0] for p in pairs] + [halves(p)[1] for p in pairs]
    width = max(len(r["input_ids"]) for r in rows)
    assert batch["input_ids"].shape[1] == width
    for k, r in enumerate(rows):
        n = len(r["input_ids"])
        assert batch["input_ids"][k].tolist() == r["input_ids"] + [pad] * (width - n)
        assert batch["labels"][k].tolist() == [IGNORE, *r["labels"][1:]] + [IGNORE] * (width - n)
        assert batch["attention_mask"][k].tolist() == [1] * n + [0] * (width - n)
    assert int(batch["labels"].min()) == IGNORE  # no marker survives
    assert batch["real_tokens"].item() == sum(len(p["input_ids"]) for p in pairs)


def test_debug_view_shows_both_halves(tiny: Any) -> None:
    (pair,), _ = encode([PAIR], ALPACA_SHORT, tiny)
    shown = [(title, show_example(part, tiny, color=False)) for title, part in parts(pair)]
    assert shown == [
        (
            "chosen",
            "«### Instruction:\nReverse the letters.\n\n### Input:\na b c\n\n### Response:\n»c b a</s>",
        ),
        (
            "rejected",
            "«### Instruction:\nReverse the letters.\n\n### Input:\na b c\n\n### Response:\n»a c b</s>",
        ),
    ]
    (ex,), _ = encode(KTO[1:2], KTO_FMT, tiny)
    assert [t for t, _ in parts(ex)] == ["undesirable"]


def test_generation_prompt_is_the_training_prompt(tiny: Any) -> None:
    from trainer.inference.prompts import plain_prompt_ids

    o = opts(tiny)
    (pair,), _ = encode([PAIR], ALPACA_SHORT, tiny)
    chosen, _ = halves(pair)
    start = next(i for i, t in enumerate(chosen["labels"]) if t != IGNORE)
    assert generation_prompt_ids(PAIR, ALPACA_SHORT, tiny, o.chat_template) == chosen["input_ids"][:start]
    only_prompt = {"instruction": PAIR["instruction"], "input": PAIR["input"]}
    assert (
        generation_prompt_ids(only_prompt, ALPACA_SHORT, tiny, o.chat_template) == chosen["input_ids"][:start]
    )
    hh = PreferenceFormat(template="none", prompt=None)
    assert plain_prompt_ids("Human: hi", hh, tiny, None) == tiny("Human: hi")["input_ids"]


# --- the pipeline on public layouts ----------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_ultrafeedback_and_hh_layouts_through_prepare_data(tmp_path: Path, tiny: Any) -> None:
    """UltraFeedback binarized rows {prompt, chosen: [user, assistant], rejected: [...], score_*}:
        format: {type: preference, template: chat, prompt: prompt, chosen: chosen, rejected: rejected}
    Anthropic HH rows {chosen: "\\n\\nHuman: ...\\n\\nAssistant: ...", rejected: ...}:
        format: {type: preference, template: none, prompt: null}"""

    def uf(i: int) -> dict:
        q = f"What is {i} plus {i}?"
        user = {"role": "user", "content": q}
        return {
            "prompt": q,
            "prompt_id": f"id{i}",
            "chosen": [user, {"role": "assistant", "content": f"It is {2 * i}."}],
            "rejected": [
                user,
                {"role": "assistant", "content": "I do not know." if i % 5 else f"It is {2 * i}."},
            ],
            "score_chosen": 9.0,
            "score_rejected": 2.0,
        }

    def hh(i: int) -> dict:
        start = f"\n\nHuman: Count to {i}.\n\nAssistant:"
        return {"chosen": start + " " + " ".join(str(k) for k in range(1, i + 1)), "rejected": start + " No."}

    ufile = write_jsonl(tmp_path / "uf.jsonl", [uf(i) for i in range(1, 21)])  # 4 with identical answers
    hfile = write_jsonl(tmp_path / "hh.jsonl", [hh(i) for i in range(1, 41)])
    uf_fmt = {"type": "preference", "template": "chat", "prompt": "prompt"}
    hh_fmt = {"type": "preference", "template": "none", "prompt": None}
    base = dict(
        sequence_len=64, too_long="drop", global_batch=4, micro_batch=4, cache_dir=str(tmp_path / "c")
    )
    cfg = DataConfig(datasets={"uf": {"path": str(ufile), "format": uf_fmt}}, val_count=4, **base)
    data = prepare_data(cfg, tiny, seed=1)
    s = data.summary.train["uf"]
    assert (s.read, s.kept, s.dropped) == (20, 16, {"identical": 4})
    assert (data.summary.train_examples, data.summary.val_examples) == (12, 4)
    assert "training set 12 pairs (4 held out for validation)" in [r[1] for r in data.summary.rows()]
    assert data.kind == "preference" and data.summary.cache.startswith("built")
    batch = data.collator(tiny.pad_token_id, train=True)([data.examples[i] for i in range(4)])
    assert batch["input_ids"].shape[0] == 8 and batch["pairs"].item() == 4
    assert isinstance(data.collator(tiny.pad_token_id, train=False), PairCollator)

    # The cache key holds each dataset's format: the same file under another template misses.
    again = prepare_data(cfg, tiny, seed=1)
    assert again.summary.cache.startswith("hit")
    other = {**uf_fmt, "system": "sys"}
    cfg2 = DataConfig(datasets={"uf": {"path": str(ufile), "format": other}}, val_count=4, **base)
    assert prepare_data(cfg2, tiny, seed=1).summary.cache.startswith("built")

    cfg = DataConfig(datasets={"hh": {"path": str(hfile), "format": hh_fmt}}, **base)
    data = prepare_data(cfg, tiny, seed=1)
    s = data.summary.train["hh"]
    assert s.read == 40 and s.kept + s.dropped.get("too_long", 0) == 40 and 0 < s.dropped["too_long"] < 40
    assert all(len(h["input_ids"]) <= 64 for e in data.examples for _, h in parts(e))


def test_kto_set_through_prepare_data_picks_the_kto_collator(tiny: Any) -> None:
    cfg = load_config(["data=tiny_kto", "objective=kto", "data.cache=false"]).data
    data = prepare_data(cfg, tiny, seed=1)
    assert data.kind == "kto" and isinstance(data.collator(0, train=True), KtoCollator)
    s = data.summary.train["tiny_kto"]
    assert (s.read, s.kept, s.dropped) == (3000, 3000, {})
    batch = data.collator(tiny.pad_token_id, train=True)([data.examples[i] for i in range(16)])
    assert batch["input_ids"].shape[0] == 32 and batch["desirable"].dtype == torch.bool


# --- config rules ----------------------------------------------------------------------------------------


def problems_of(overrides: list[str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(overrides)
    return [p.render() for p in info.value.problems]


def test_data_kind() -> None:
    assert load_config().data.kind == "sft"
    assert load_config(["data=tiny_prefs", "objective=dpo"]).data.kind == "preference"
    assert load_config(["data=tiny_kto", "objective=kto"]).data.kind == "kto"


def test_mixed_kinds_are_refused() -> None:
    lines = problems_of(
        ["data=tiny_prefs", "objective=dpo", "data.validation.tiny_prefs.format={type:alpaca}"]
    )
    assert lines == [
        "  data.validation.tiny_prefs.format.type=alpaca: is sft data, but data.datasets.tiny_prefs is "
        "preference data; all training and validation datasets of a run must be of one kind (supervised "
        "formats, preference, or kto); give data.validation.tiny_prefs a preference format, or train the two "
        "kinds in separate runs"
    ]


def test_packing_and_train_on_inputs_are_refused_for_preference_data() -> None:
    assert problems_of(["data=tiny_prefs", "objective=dpo", "data.packing=true"]) == [
        "  data.packing=True: packing is not supported with preference data (each batch row must be one "
        "whole sequence); set data.packing=false"
    ]
    assert problems_of(["data=tiny_kto", "objective=kto", "data.train_on_inputs=true"]) == [
        "  data.train_on_inputs=True: does not apply to kto data: preference losses score only the "
        "responses, never the prompt; set data.train_on_inputs=false"
    ]


# --- the shipped sets ------------------------------------------------------------------------------------


def test_shipped_sets_are_what_the_script_makes(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "make_tiny_prefs.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True)
    for name in ("tiny_prefs", "tiny_kto"):
        for split in ("train", "validation"):
            shipped = Path(asset_path(f"data/{name}/{split}.json"))
            assert (tmp_path / "data" / name / f"{split}.json").read_bytes() == shipped.read_bytes()
            assert shipped.stat().st_size < 1_000_000
    pairs = json.loads(Path(asset_path("data/tiny_prefs/validation.json")).read_text())
    tasks = json.loads(Path(asset_path("data/tiny_tasks/validation.json")).read_text())
    assert sorted((p["instruction"], p["input"], p["chosen"]) for p in pairs) == sorted(
        (t["instruction"], t["input"], t["output"]) for t in tasks
    )
    kto = json.loads(Path(asset_path("data/tiny_kto/train.json")).read_text())
    assert sum(r["label"] for r in kto) == len(kto) // 2


def test_preprocess_debug_shows_both_halves_of_a_pair(tmp_path: Path) -> None:
    result = run_cli(
        ["preprocess", "data=tiny_prefs", "objective=dpo", "--debug", "1", "--plain"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("[chosen, ") < out.index("[rejected, ")
    assert "train tiny_prefs: 3,000 kept of 3,000 read" in out and "training set 3,000 pairs" in out


def test_prompt_layouts_follow_the_template(tiny: Any) -> None:
    """Export and chat treat preference data as its template: alpaca_short as alpaca, chat as chat,
    none as raw text."""
    from trainer.inference.conversation import mode_of
    from trainer.training.prompt_format import prompt_format

    shipped = prompt_format(load_config(["data=tiny_prefs", "objective=dpo"]), tiny)
    assert (shipped.kind, shipped.style, shipped.format_type) == ("alpaca", "alpaca_short", "preference")
    assert prompt_format(load_config(["data=tiny_kto", "objective=kto"]), tiny).kind == "alpaca"
    modes = [
        mode_of(f)
        for f in (PreferenceFormat(), KtoFormat(template="alpaca"), PreferenceFormat(template="none"))
    ]
    assert modes == ["conversation", "single", "raw"]
