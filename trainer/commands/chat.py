"""`trainer chat infer.source=RUN`: talk with a trained model in the terminal.

Each message is answered in the run's own prompt format and chat template (trainer/inference/
conversation.py): chat runs (and alpaca runs with `template: chat`) see the whole conversation so far,
rendered as training renders one; plain alpaca runs answer each message on its own; raw-text runs
(completion, pretokenized, input_output) continue the message as text. Decoding takes generate's keys
(greedy unless infer.do_sample; the seed is set before each reply, so the same prompt gets the same
reply whatever was sampled before). In a terminal tokens stream as they come and lines can be edited
(readline); from a pipe the messages are read line by line and each whole reply is printed.

Commands: /reset forgets the history, /exit (or Ctrl-D) quits, /help. Ctrl-C stops a reply (what was
printed stays in the history) and, at the prompt, quits.
"""

from __future__ import annotations

import re
import signal
import sys
from dataclasses import dataclass
from types import FrameType
from typing import Any

from trainer.boundary import USER_ERRORS, Invocation
from trainer.boundary.report import message
from trainer.commands.usage import run_command
from trainer.config import ConfigError, TrainConfig
from trainer.config.problems import Problem

USAGE = "trainer chat infer.source=DIR [infer.max_new_tokens=N infer.do_sample=true ...]"
PROMPT = ">>> "
COMMANDS = "/reset forgets the history, /exit or Ctrl-D quits, /help; Ctrl-C stops a reply"
_COMMAND = re.compile(r"/[A-Za-z]+")  # "/etc/hosts: what is it?" is a message, not a command


def refuse_prompts(cfg: TrainConfig) -> None:
    """A prompt list given to chat would be silently ignored: the messages come from the terminal."""
    for key, value in (("prompts", cfg.infer.prompts), ("prompt_file", cfg.infer.prompt_file)):
        if value:
            raise ConfigError(
                [
                    Problem(
                        f"infer.{key}",
                        value,
                        "chat reads its messages from the terminal (or stdin), not from infer.prompts or "
                        "infer.prompt_file",
                        "drop it, or use `trainer generate` for a list of prompts",
                    )
                ]
            )


class Interrupts:
    """While a reply is decoded, Ctrl-C (SIGINT) asks it to stop instead of ending the process."""

    def __init__(self) -> None:
        self.seen = False
        self._before: Any = None

    def _caught(self, signum: int, frame: FrameType | None) -> None:
        self.seen = True

    def asked(self) -> bool:
        return self.seen

    def __enter__(self) -> Interrupts:
        self.seen = False
        self._before = signal.signal(signal.SIGINT, self._caught)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._before)


@dataclass
class Session:
    conversation: Any  # trainer.inference.conversation.Conversation (imported with torch, lazily)
    model: Any
    seed: int
    options: dict[str, Any]
    streaming: bool
    interactive: bool  # stdin is a terminal: prompt with input() (readline); else read lines

    def read(self) -> str | None:
        """The next line; None at the end (Ctrl-D, end of the input)."""
        if self.interactive:
            try:
                return input(PROMPT)
            except EOFError:
                print()
                return None
        line = sys.stdin.readline()
        if not line:
            return None
        line = line.rstrip("\r\n")
        print(PROMPT + line, flush=True)  # the transcript shows what was asked, as a terminal would
        return line

    def run(self) -> None:
        while True:
            try:
                line = self.read()
            except KeyboardInterrupt:  # Ctrl-C at the prompt: leave like Ctrl-D
                print()
                return
            if line is None:
                return
            text = line.strip()
            if not text:
                continue
            if _COMMAND.fullmatch(text.split()[0]):
                if not self.command(text.split()[0]):
                    return
                continue
            self.reply(text)

    def command(self, name: str) -> bool:
        """Do `/name`; False = the session ends."""
        if name == "/exit":
            return False
        if name == "/reset":
            self.conversation.reset()
            print("(history cleared)", flush=True)
        elif name == "/help":
            print(COMMANDS, flush=True)
        else:
            print(f"unknown command {name}: {COMMANDS}", flush=True)
        return True

    def reply(self, text: str) -> None:
        from trainer.inference.decode import completion

        try:
            ids = self.conversation.prompt_ids(text)
        except USER_ERRORS as err:  # e.g. a template that refuses the conversation: say so, go on
            print(message(err), file=sys.stderr, flush=True)
            return
        tok = self.conversation.tokenizer
        with Interrupts() as ctrl_c:
            answer = completion(self.model, tok, ids, self.seed, self.options, self.streaming, ctrl_c.asked)
        if not self.streaming:
            print(answer, flush=True)
        if ctrl_c.seen:
            print("(stopped)", flush=True)
        self.conversation.add(text, answer)


def chat(inv: Invocation) -> None:
    from trainer.data.prepare import encode_options
    from trainer.inference.conversation import Conversation
    from trainer.inference.load import load_model, load_tokenizer
    from trainer.inference.prompts import decoding, generation_options, training_format
    from trainer.inference.source import resolve_source

    refuse_prompts(inv.cfg)  # before anything heavy loads
    src = resolve_source(inv)
    cfg = src.cfg
    fmt = training_format(cfg)
    tokenizer = load_tokenizer(src)
    conversation = Conversation(fmt, tokenizer, encode_options(cfg.data, tokenizer).chat_template)
    model = load_model(src, tokenizer)
    interactive = sys.stdin.isatty()
    if interactive:
        # A process started in the background of a script (`cmd &`, nohup) inherits SIGINT ignored, and
        # Python then leaves it so: Ctrl-C at the prompt would do nothing. In a terminal session it quits.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            import readline  # noqa: F401 - input() then edits lines and recalls earlier ones
        except ImportError:  # no GNU readline here: plain input() still works
            pass
    how, seed = decoding(cfg)
    print(f"trainer chat: {src.label} ({fmt.type} format, {how}, seed {seed}); {COMMANDS}", flush=True)
    if conversation.note:
        print(f"note: {conversation.note}", flush=True)
    streaming = cfg.infer.stream and sys.stdout.isatty()
    Session(conversation, model, seed, generation_options(cfg, tokenizer), streaming, interactive).run()


def main(args: list[str]) -> None:
    run_command("chat", __doc__, USAGE, args, chat, infer_keys="chat")
