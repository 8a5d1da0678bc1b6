"""Train the built-in tokenizer: a small byte-level BPE, saved in Hugging Face format.

Why: the default run and the tests must not download anything, and a real BPE trained with
`tokenizers` behaves like a hub tokenizer (AutoTokenizer loads it, it round-trips any text). Digits are
split one per token so arithmetic stays learnable; letters separated by spaces stay one token each.

Run: python scripts/make_tiny_tokenizer.py  (writes trainer/assets/tokenizer/)
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "trainer" / "assets" / "data" / "tiny_tasks" / "train.json"
OUT = ROOT / "trainer" / "assets" / "tokenizer"
VOCAB_SIZE = 384
BOS, EOS, PAD = "<s>", "</s>", "<pad>"
# The chat template (turns, tools, tool calls) is maintained as a file in the asset folder; the script
# keeps it, so regenerating the vocabulary never reverts the template.
TEMPLATE_FILE = OUT / "chat_template.jinja"
# Generic text so that words outside the built-in data still get sensible merges.
EXTRA_TEXT = [
    "### Instruction:\n",
    "### Input:\n",
    "### Response:\n",
    "Below is an instruction that describes a task. Write a response that appropriately completes "
    "the request.",
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.",
    "The quick brown fox jumps over the lazy dog. Hello, world! What is the answer?",
]


def corpus() -> list[str]:
    rows = json.loads(DATA.read_text(encoding="utf-8"))
    texts = [
        f"### Instruction:\n{r['instruction']}\n\n### Input:\n{r['input']}\n\n### Response:\n{r['output']}"
        for r in rows
    ]
    return texts + EXTRA_TEXT * 50


def main() -> None:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=2048
    )
    fast.chat_template = TEMPLATE_FILE.read_text()
    OUT.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(OUT)
    print(f"wrote tokenizer with {len(fast)} tokens to {OUT}")


if __name__ == "__main__":
    main()
