"""`trainer generate infer.source=RUN 'infer.prompts=[...]'`: complete prompts with a trained model.

Each prompt is rendered exactly as the prompt part of a training example (trainer/inference/prompts.py):
a plain prompt becomes the training format's record (alpaca: the instruction; chat: one user message;
completion: the text itself). Decoding is greedy unless `infer.do_sample`, and the seed is set before
each prompt, so a prompt's completion does not depend on the prompts before it. In a terminal tokens
stream as they come; a pipe gets each whole completion. No run folder is created.
"""

from __future__ import annotations

import sys
from typing import Any

from trainer.boundary import Invocation
from trainer.commands.usage import run_command

USAGE = "trainer generate infer.source=DIR 'infer.prompts=[...]' (or infer.prompt_file=FILE) [KEY=VALUE ...]"


def quoted(text: str) -> str:
    """A prompt as printed: each line after "> ", so prompt and completion are told apart in any terminal."""
    return "\n".join(f"> {line}".rstrip() for line in text.splitlines())


def generate(inv: Invocation, stream: bool | None = None) -> list[str]:
    """Print and return one completion per prompt; `stream` None = when stdout is a terminal."""
    from trainer.data.prepare import encode_options
    from trainer.inference.load import load_model, load_tokenizer
    from trainer.inference.prompts import (
        build_prompts,
        decoding,
        generation_options,
        require_prompts,
        training_format,
    )
    from trainer.inference.source import resolve_source

    require_prompts(inv.cfg)  # before anything heavy loads
    src = resolve_source(inv)
    cfg = src.cfg
    fmt = training_format(cfg)
    tokenizer = load_tokenizer(src)
    template = encode_options(cfg.data, tokenizer).chat_template
    prompts = build_prompts(cfg, fmt, tokenizer, template)  # bad records fail before the model loads
    model = load_model(src, tokenizer)
    streaming = cfg.infer.stream and (sys.stdout.isatty() if stream is None else stream)
    how, seed = decoding(cfg)
    print(f"trainer generate: {src.label} ({fmt.type} format, {how}, seed {seed})")
    options = generation_options(cfg, tokenizer)
    return [complete(model, tokenizer, p, seed, options, streaming) for p in prompts]


def complete(
    model: Any, tokenizer: Any, prompt: Any, seed: int, options: dict[str, Any], streaming: bool
) -> str:
    """One prompt: print it, then its completion (token by token when streaming)."""
    from trainer.inference.decode import completion

    print("\n" + quoted(prompt.shown), flush=True)
    text = completion(model, tokenizer, prompt.ids, seed, options, streaming)
    if not streaming:
        print(text, flush=True)
    return text


def main(args: list[str]) -> None:
    run_command("generate", __doc__, USAGE, args, generate, infer_keys="generate")
