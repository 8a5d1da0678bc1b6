"""Record formats -> ids and label masks, checked token by token with the built-in tokenizer.

The helper `trained_runs` decodes each run of consecutive trained tokens, so a test can say exactly
which text is trained (assistant contents + end-of-turn) and, by `masked_runs`, which is not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from trainer.assets import asset_path
from trainer.config.dataset import (
    AlpacaFormat,
    ChatFormat,
    CompletionFormat,
    InputOutputFormat,
    PretokenizedFormat,
)
from trainer.data.chat_templates import SHIPPED, resolve_chat_template, shipped_template
from trainer.data.debug_view import show_example
from trainer.data.encoded import IGNORE, EncodeOptions
from trainer.data.formats import encode_dataset, generation_prompt, generation_prompt_ids
from trainer.errors import UserError

GLAIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "glaive_toolcall_en_demo.json"
KEY = "data.datasets.demo"
EOS = "</s>"


@pytest.fixture(scope="module")
def tok() -> Any:
    return AutoTokenizer.from_pretrained(asset_path("tokenizer"))


def opts(tok: Any = None, template: str = "auto", **kw: Any) -> EncodeOptions:
    base = dict(sequence_len=4096, too_long="error", train_on_inputs=False)
    base.update(kw)
    chat = resolve_chat_template(template, tok) if tok is not None else None
    return EncodeOptions(chat_template=chat, **base)


def runs(example: dict, tok: Any, trained: bool) -> list[str]:
    """Decoded runs of consecutive tokens that are trained (or, trained=False, masked)."""
    out, cur = [], []
    for t, lab in zip(example["input_ids"], example["labels"], strict=True):
        if (lab != IGNORE) == trained:
            cur.append(t)
        elif cur:
            out.append(tok.decode(cur, skip_special_tokens=False))
            cur = []
    if cur:
        out.append(tok.decode(cur, skip_special_tokens=False))
    return out


def one(records: list[dict], fmt: Any, tok: Any, o: EncodeOptions) -> dict:
    examples, stats = encode_dataset(records, fmt, tok, o, KEY)
    assert len(examples) == 1 and stats.kept == 1
    return examples[0]


ALPACA = {"instruction": "Add the numbers.", "input": "2 + 3", "output": "The sum is 5."}
CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Sum 2 and 3"},
        {"role": "assistant", "content": "It is 5."},
    ]
}
TOOLS = [{"name": "get_weather", "description": "Weather now", "parameters": {"type": "object"}}]
SHAREGPT = {
    "conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {
            "from": "function_call",
            "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}}),
        },
        {"from": "observation", "value": '{"sky": "sunny"}'},
        {"from": "gpt", "value": "It is sunny."},
    ],
    "tools": json.dumps(TOOLS),
}
CALL_TEXT = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


# --- alpaca ---------------------------------------------------------------------------------------


def test_alpaca_trains_response_and_eos_only(tok: Any) -> None:
    ex = one([ALPACA], AlpacaFormat(), tok, opts())
    assert runs(ex, tok, True) == ["The sum is 5." + EOS]
    (masked,) = runs(ex, tok, False)
    assert masked.startswith("Below is an instruction") and masked.endswith(
        "### Input:\n2 + 3\n\n### Response:\n"
    )
    assert ex["input_ids"][-1] == tok.eos_token_id


def test_alpaca_short_system_and_train_on_inputs(tok: Any) -> None:
    rec = {**ALPACA, "system": "You add."}
    ex = one([rec], AlpacaFormat(template="alpaca_short"), tok, opts())
    assert runs(ex, tok, False) == [
        "You add.\n\n### Instruction:\nAdd the numbers.\n\n### Input:\n2 + 3\n\n### Response:\n"
    ]
    every = one([rec], AlpacaFormat(template="alpaca_short"), tok, opts(train_on_inputs=True))
    assert every["labels"] == every["input_ids"] == ex["input_ids"]


def test_alpaca_custom_fields_and_missing_field_error(tok: Any) -> None:
    fmt = AlpacaFormat(instruction="q", output="a", input="ctx")
    ex = one([{"q": "Say hi.", "a": "hi"}], fmt, tok, opts())
    assert runs(ex, tok, True) == ["hi" + EOS]
    with pytest.raises(UserError) as err:
        encode_dataset([ALPACA, {"instruction": "x"}], AlpacaFormat(), tok, opts(), KEY)
    assert err.value.message.startswith(f"{KEY}: example 1 has no text field 'output' (missing)")
    assert err.value.hint
    with pytest.raises(UserError, match=r"example 11 has no text field 'instruction' \(a number\)"):
        encode_dataset([{"instruction": 3, "output": "x"}], AlpacaFormat(), tok, opts(), KEY, first_index=11)


def test_alpaca_chat_template_goes_through_the_chat_path(tok: Any) -> None:
    ex = one([{**ALPACA, "system": "S"}], AlpacaFormat(template="chat"), tok, opts(tok))
    assert runs(ex, tok, True) == ["The sum is 5." + EOS]
    assert runs(ex, tok, False) == [
        "<|system|>\nS\n<|user|>\nAdd the numbers.\n\n2 + 3\n<|assistant|>\n",
        "\n",
    ]


@pytest.mark.parametrize("policy", ["drop", "truncate", "error"])
def test_too_long_policy(tok: Any, policy: str) -> None:
    short = {"instruction": "Hi", "output": "Yo"}
    long = {"instruction": "Hi", "output": "word " * 200}
    o = opts(sequence_len=64, too_long=policy)
    if policy == "error":
        with pytest.raises(
            UserError, match=rf"{KEY}: example 1 has \d+ tokens, more than data.sequence_len=64"
        ):
            encode_dataset([short, long], AlpacaFormat(template="alpaca_short"), tok, o, KEY)
        return
    examples, stats = encode_dataset([short, long], AlpacaFormat(template="alpaca_short"), tok, o, KEY)
    assert stats.read == 2
    if policy == "drop":
        assert len(examples) == 1 and stats.dropped == {"too_long": 1} and stats.truncated == 0
    else:
        assert [len(e["input_ids"]) for e in examples][1] == 64 and stats.truncated == 1 and not stats.dropped


# --- chat -----------------------------------------------------------------------------------------


def test_tiny_template_look_for_plain_messages(tok: Any) -> None:
    text = tok.apply_chat_template(CHAT["messages"][1:3], tokenize=False)
    assert text == "<|user|>\nHi there\n<|assistant|>\nHello!</s>\n"


def test_chat_trains_assistant_turns_with_eos(tok: Any) -> None:
    ex = one([CHAT], ChatFormat(), tok, opts(tok))
    assert runs(ex, tok, True) == ["Hello!" + EOS, "It is 5." + EOS]
    masked = runs(ex, tok, False)
    assert masked[0] == "<|system|>\nBe brief.\n<|user|>\nHi there\n<|assistant|>\n"
    assert masked[1] == "\n<|user|>\nSum 2 and 3\n<|assistant|>\n"


def test_chat_roles_and_train_on_inputs(tok: Any) -> None:
    ex = one([CHAT], ChatFormat(roles=["assistant", "user"]), tok, opts(tok))
    assert runs(ex, tok, True) == ["Hi there", "Hello!" + EOS, "Sum 2 and 3", "It is 5." + EOS]
    every = one([CHAT], ChatFormat(), tok, opts(tok, train_on_inputs=True))
    assert every["labels"] == every["input_ids"] == ex["input_ids"]


def test_sharegpt_tool_calls_and_observations(tok: Any) -> None:
    ex = one([SHAREGPT], ChatFormat(field="conversations"), tok, opts(tok))
    assert runs(ex, tok, True) == [CALL_TEXT + EOS, "It is sunny." + EOS]
    masked = runs(ex, tok, False)
    assert masked[0] == f"<|tools|>\n{json.dumps(TOOLS[0])}\n<|user|>\nWeather in Paris?\n<|assistant|>\n"
    assert masked[1] == '\n<|tool|>\n{"sky": "sunny"}\n<|assistant|>\n'


def test_openai_tool_calls_with_json_string_arguments(tok: Any) -> None:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    rec = {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "1", "content": '{"sky": "sunny"}'},
            {"role": "assistant", "content": "It is sunny."},
        ],
        "tools": TOOLS,
    }
    openai = one([rec], ChatFormat(), tok, opts(tok))
    sharegpt = one([SHAREGPT], ChatFormat(field="conversations"), tok, opts(tok))
    assert openai == sharegpt


def test_unknown_sharegpt_role(tok: Any) -> None:
    rec = {"conversations": [{"from": "human", "value": "a"}, {"from": "bot", "value": "b"}]}
    with pytest.raises(UserError) as err:
        encode_dataset([rec], ChatFormat(field="conversations"), tok, opts(tok), KEY)
    assert "example 0, message 1: ShareGPT role 'bot' is not in role_map" in err.value.message
    assert "role_map.bot" in (err.value.hint or "")


def test_chat_missing_field_hints_the_right_one(tok: Any) -> None:
    with pytest.raises(UserError) as err:
        encode_dataset([SHAREGPT], ChatFormat(), tok, opts(tok), KEY)
    assert err.value.message == f"{KEY}: example 0 has no message list in field 'messages' (missing)"
    assert err.value.hint == f"set {KEY}.format.field=conversations"


@pytest.mark.parametrize(
    ("name", "header", "end"),
    [
        ("chatml", "<|im_start|>assistant\n", "<|im_end|>"),
        ("llama3", "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
    ],
)
def test_shipped_templates(tok: Any, name: str, header: str, end: str) -> None:
    ex = one([CHAT], ChatFormat(), tok, opts(tok, name))
    assert runs(ex, tok, True) == ["Hello!" + end, "It is 5." + end]
    assert all(m.endswith(header) for m in runs(ex, tok, False)[:2])
    assert (ex["input_ids"][0] == tok.bos_token_id) == (name == "llama3")  # llama3 writes bos as text
    tools = one([SHAREGPT], ChatFormat(field="conversations"), tok, opts(tok, name))
    trained = runs(tools, tok, True)
    assert len(trained) == 2 and trained[1] == "It is sunny." + end
    assert '"get_weather"' in trained[0] and '"Paris"' in trained[0] and trained[0].endswith(end)
    assert '"Weather now"' in runs(tools, tok, False)[0]


def test_shipped_template_text(tok: Any) -> None:
    msgs = CHAT["messages"][:3]
    chatml = tok.apply_chat_template(msgs, chat_template=shipped_template("chatml"), tokenize=False)
    assert chatml == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
    )
    llama3 = tok.apply_chat_template(
        msgs[1:2], chat_template=shipped_template("llama3"), tokenize=False, add_generation_prompt=True
    )
    assert llama3 == (
        "<s><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_resolve_chat_template(tok: Any) -> None:
    # The names the config accepts are exactly the templates shipped, and each has its file.
    from typing import get_args

    from trainer.config.data import DataConfig

    accepted = set(get_args(DataConfig.model_fields["chat_template"].annotation)) - {"auto"}
    assert set(SHIPPED) == accepted and all(shipped_template(n).strip() for n in SHIPPED)
    assert resolve_chat_template("auto", tok) == tok.chat_template
    assert resolve_chat_template("chatml", tok) == shipped_template("chatml") != tok.chat_template
    with pytest.raises(UserError, match="unknown template"):
        resolve_chat_template("vicuna", tok)


def test_tokenizer_without_template() -> None:
    bare = AutoTokenizer.from_pretrained(asset_path("tokenizer"))
    bare.chat_template = None
    assert resolve_chat_template("auto", bare) is None
    for fmt, rec in ((ChatFormat(), CHAT), (AlpacaFormat(template="chat"), ALPACA)):
        with pytest.raises(UserError) as err:
            encode_dataset([rec], fmt, bare, opts(bare), KEY)
        assert err.value.message.endswith(
            "the tokenizer has no chat template; set data.chat_template=chatml|llama3"
        )


def test_template_that_is_not_prefix_stable(tok: Any) -> None:
    unstable = "{{ messages | length }}{% for m in messages %}|{{ m['content'] }}{% endfor %}"
    o = EncodeOptions(sequence_len=512, too_long="error", train_on_inputs=False, chat_template=unstable)
    with pytest.raises(UserError, match="not prefix-stable"):
        encode_dataset([CHAT], ChatFormat(), tok, o, KEY)


def test_chat_too_long_goes_through_admit(tok: Any) -> None:
    examples, stats = encode_dataset(
        [CHAT], ChatFormat(), tok, opts(tok, sequence_len=20, too_long="drop"), KEY
    )
    assert examples == [] and stats.dropped == {"too_long": 1}


@pytest.mark.skipif(not GLAIVE.exists(), reason="shared reference data is absent")
def test_glaive_file(tok: Any) -> None:
    records = json.loads(GLAIVE.read_text(encoding="utf-8"))
    o = opts(tok, sequence_len=16384)
    examples, stats = encode_dataset(records, ChatFormat(field="conversations"), tok, o, KEY)
    assert stats.read == len(records) == len(examples)
    for rec, ex in zip(records, examples, strict=True):
        trained = runs(ex, tok, True)
        assert len(trained) == sum(m["from"] in ("gpt", "function_call") for m in rec["conversations"])
        assert all(t.endswith(EOS) and "<|" not in t for t in trained)
        calls = [t for t in trained if t.startswith("<tool_call>")]
        assert len(calls) == sum(m["from"] == "function_call" for m in rec["conversations"])


# --- generation prompt ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rec", "fmt", "template"),
    [
        (ALPACA, AlpacaFormat(), "auto"),
        ({**ALPACA, "system": "S"}, AlpacaFormat(template="chat"), "auto"),
        (CHAT, ChatFormat(), "auto"),
        (CHAT, ChatFormat(), "llama3"),
        (SHAREGPT, ChatFormat(field="conversations"), "chatml"),
    ],
)
def test_generation_prompt_is_the_prompt_part(tok: Any, rec: dict, fmt: Any, template: str) -> None:
    ex = one([rec], fmt, tok, opts(tok, template))
    labels = ex["labels"]
    last = max(i for i in range(len(labels) - 1) if labels[i] == IGNORE and labels[i + 1] != IGNORE) + 1
    text = generation_prompt(rec, fmt, tok, resolve_chat_template(template, tok))
    ids = generation_prompt_ids(rec, fmt, tok, resolve_chat_template(template, tok))
    assert ids == ex["input_ids"][:last]
    assert tok.decode(ids, skip_special_tokens=False) == text


# --- completion, input_output, pretokenized ---------------------------------------------------------


def test_completion_chunks_and_empty(tok: Any) -> None:
    text = "the quick brown fox " * 30
    body = tok(text, add_special_tokens=False)["input_ids"]
    full = [tok.bos_token_id, *body, tok.eos_token_id]
    examples, stats = encode_dataset(
        [{"text": text}, {"text": "  "}], CompletionFormat(), tok, opts(sequence_len=50), KEY
    )
    assert [len(e["input_ids"]) for e in examples[:-1]] == [50] * (len(full) // 50)
    assert [t for e in examples for t in e["input_ids"]] == full
    assert all(e["labels"] == e["input_ids"] for e in examples)
    assert (
        stats.chunked == 1
        and stats.dropped == {"empty": 1}
        and stats.kept == len(examples) == -(-len(full) // 50)
    )


def test_input_output_flags(tok: Any) -> None:
    rec = {
        "segments": [
            {"text": "Q: 2+3?", "label": False},
            {"text": " A: 5", "label": True},
            {"text": " end", "label": False},
        ]
    }
    ex = one([rec], InputOutputFormat(), tok, opts())
    assert ex["input_ids"][0] == tok.bos_token_id and ex["labels"][0] == IGNORE
    assert runs(ex, tok, True) == [" A: 5"]
    assert runs(ex, tok, False) == ["<s>Q: 2+3?", " end"]
    assert one([rec], InputOutputFormat(), tok, opts(train_on_inputs=True))["labels"] == ex["input_ids"]
    assert generation_prompt(rec, InputOutputFormat(), tok, None) == "Q: 2+3?"
    with pytest.raises(UserError, match=r"example 0, segment 0: expected"):
        encode_dataset([{"segments": [{"text": "x", "label": "yes"}]}], InputOutputFormat(), tok, opts(), KEY)


def test_pretokenized(tok: Any) -> None:
    fmt = PretokenizedFormat()
    ex = one([{"input_ids": [1, 5, 6, 7], "labels": [IGNORE, IGNORE, 6, 7]}], fmt, tok, opts())
    assert ex == {"input_ids": [1, 5, 6, 7], "labels": [IGNORE, IGNORE, 6, 7]}
    assert one([{"input_ids": [1, 5, 6]}], fmt, tok, opts())["labels"] == [1, 5, 6]
    with pytest.raises(UserError, match=rf"{KEY}: example 1: 3 input_ids but 2 labels"):
        encode_dataset(
            [{"input_ids": [1, 2]}, {"input_ids": [1, 2, 3], "labels": [1, 2]}], fmt, tok, opts(), KEY
        )
    with pytest.raises(UserError, match="should be a list of integers"):
        encode_dataset([{"input_ids": "1 2 3"}], fmt, tok, opts(), KEY)
    with pytest.raises(
        UserError, match=rf"{KEY}: example 0: input_ids holds -100, outside the tokenizer's ids"
    ):
        encode_dataset([{"input_ids": [1, -100, 3]}], fmt, tok, opts(), KEY)


def test_sharegpt_from_that_is_not_text(tok: Any) -> None:
    record = {"conversations": [{"from": ["human"], "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    with pytest.raises(UserError, match=r"ShareGPT role \['human'\] is not in role_map"):
        encode_dataset([record], ChatFormat(field="conversations"), tok, opts(tok), KEY)


# --- debug view -------------------------------------------------------------------------------------


def test_show_example(tok: Any) -> None:
    ex = one([{"messages": CHAT["messages"][1:3]}], ChatFormat(), tok, opts(tok))
    plain = show_example(ex, tok, color=False)
    assert plain == "«<|user|>\nHi there\n<|assistant|>\n»Hello!</s>«\n»"
    colored = show_example(ex, tok, color=True)
    assert "\x1b[32mHello!</s>\x1b[0m" in colored and "\x1b[2m<|user|>" in colored and "«" not in colored
