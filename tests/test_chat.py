"""`trainer chat` through a real pseudo-terminal, against `trainer generate` on the same runs.

Two runs are trained once for the module, side by side: the built-in alpaca tasks (4 steps) and the same
tasks as two-turn chat conversations (30 steps: fewer leave a model that answers every prompt with eos
at once, so greedy replies would all be empty and compare nothing). A chat is `python -m trainer chat`
on a pty that is its controlling terminal, so readline is live and Ctrl-C is a real SIGINT from the
terminal; `generate` runs in-process (the same function the command runs) to save a torch start.
"""

from __future__ import annotations

import codecs
import fcntl
import json
import os
import re
import select
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, cli_env, finish_runs, invocation, run_cli, start_run
from trainer.commands.chat import PROMPT

pytestmark = pytest.mark.slow

TASKS = ROOT / "trainer" / "assets" / "data" / "tiny_tasks" / "train.json"
ANSI = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|[=>])")
HELP_LINE = "/reset forgets the history, /exit or Ctrl-D quits, /help; Ctrl-C stops a reply"
SAMPLING = ["infer.do_sample=true", "infer.temperature=3.0", "infer.max_new_tokens=12", "infer.seed=7"]
M1, M2 = "Add the two numbers.", "Reverse the order of the letters."


@dataclass(frozen=True)
class Runs:
    root: Path
    alpaca: Path
    chat: Path


def _user(record: dict[str, str]) -> dict[str, str]:
    text = record["instruction"] + (f"\n\n{record['input']}" if record["input"] else "")
    return {"role": "user", "content": text}


def _chat_data(path: Path, records: int = 600) -> Path:
    """The tiny tasks as two-turn conversations: a chat run's data with real history in it."""
    tasks = json.loads(TASKS.read_text())[:records]
    with path.open("w") as f:
        for a, b in zip(tasks[::2], tasks[1::2], strict=True):
            turns = [_user(a), {"role": "assistant", "content": a["output"]}]
            turns += [_user(b), {"role": "assistant", "content": b["output"]}]
            f.write(json.dumps({"messages": turns}) + "\n")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("chat")
    data = _chat_data(root / "chat.jsonl")
    jobs = {
        "alpaca": start_run(
            root,
            "alpaca",
            "tracker=none",
            "trainer.max_steps=4",
            "trainer.val_every=4",
            "data.datasets.tiny_tasks.count=200",
        ),
        "chat": start_run(
            root,
            "chat",
            "tracker=none",
            "trainer.max_steps=30",
            "trainer.val_every=disable",
            f"data.datasets.tiny_tasks.path={data}",
            "data.datasets.tiny_tasks.format.type=chat",
            "data.validation=null",
        ),
    }
    finish_runs(jobs)
    return Runs(root, root / "outputs" / "default" / "alpaca", root / "outputs" / "default" / "chat")


def _take_terminal() -> None:
    """In the child, after setsid: make the pty (its stdin) the controlling terminal, so the terminal's
    Ctrl-C reaches it as SIGINT, as in a shell."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """`trainer chat ARGS` on a pseudo-terminal: type keys, read what the screen shows."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trainer", "chat", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=cli_env(),
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.fd = master
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""  # read, not yet consumed by expect()
        self.transcript = ""

    def _read(self, deadline: float) -> bool:
        """Read what is there (waiting until `deadline`); False at the end of the output."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return True
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            data = b""
        text = ANSI.sub("", self.decoder.decode(data)).replace("\r", "")
        self.pending += text
        self.transcript += text
        return bool(data)

    def expect(self, marker: str, timeout: float = 120) -> str:
        """Wait for `marker` on the screen; return what came before it, and consume both."""
        deadline = time.monotonic() + timeout
        while marker not in self.pending:
            if time.monotonic() > deadline or not self._read(deadline):
                raise AssertionError(f"no {marker!r} on the screen; it shows:\n{self.transcript[-3000:]}")
        before, _, self.pending = self.pending.partition(marker)
        return before

    def some_output(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.pending and time.monotonic() < deadline:
            self._read(deadline)

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def say(self, line: str) -> str:
        """Type a line at the prompt; what it printed before the next prompt (its echo left out)."""
        self.type(line + "\r")
        self.expect(line + "\n")
        return self.expect(PROMPT)

    def reply(self, message: str) -> str:
        out = self.say(message)
        assert out.endswith("\n"), out
        return out[:-1]

    def exit_code(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(deadline):
            pass
        try:
            code = self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            shows = self.transcript[-3000:]
            raise AssertionError(f"still running after {timeout} s; it shows:\n{shows}") from None
        os.close(self.fd)
        return code


def _generate(
    source: Path, *args: str, prompt_file: Path | None = None, prompts: list[str] = ()
) -> list[str]:
    from trainer.commands.generate import generate

    given = [f"infer.source={source}", f"infer.prompts=[{','.join(prompts)}]", *args]
    if prompt_file is not None:
        given.append(f"infer.prompt_file={prompt_file}")
    return generate(invocation(given), stream=False)


# --- alpaca: each message on its own ----------------------------------------------------------------


def test_alpaca_chat_answers_each_message_as_generate_does(runs: Runs, tmp_path: Path) -> None:
    term = Terminal([f"infer.source={runs.alpaca}", *SAMPLING], tmp_path)
    banner = term.expect(PROMPT)
    assert banner.splitlines() == [
        f"trainer chat: {runs.alpaca} (alpaca format, sampling, seed 7); {HELP_LINE}",
        "note: history is not used by this model's format: alpaca records are single prompts, so each "
        "message is answered on its own",
    ]
    first = term.reply(M1)
    assert term.say("/nonsense") == f"unknown command /nonsense: {HELP_LINE}\n"
    assert term.say("/help") == HELP_LINE + "\n"
    again = term.reply(M1)  # no history, and the seed is set before each reply: the same reply
    term.type("/exit\r")
    assert term.exit_code() == 0
    assert first and first == again, term.transcript
    # The same model, rendering and seeded sampling as `trainer generate` (which prints these too).
    assert _generate(runs.alpaca, *SAMPLING, prompts=[M1]) == [first]


# --- chat: the conversation so far ------------------------------------------------------------------


def test_chat_run_keeps_the_conversation_and_forgets_it_on_reset(runs: Runs, tmp_path: Path) -> None:
    term = Terminal([f"infer.source={runs.chat}"], tmp_path)
    banner = term.expect(PROMPT)
    assert banner == f"trainer chat: {runs.chat} (chat format, greedy, seed 1234); {HELP_LINE}\n"
    first = term.reply(M1)
    second = term.reply(M2)
    assert term.say("/reset") == "(history cleared)\n"
    fresh = term.reply(M2)
    term.type("\x04")  # Ctrl-D at the prompt
    assert term.exit_code() == 0, term.transcript
    assert "Traceback" not in term.transcript

    conversation = tmp_path / "conversation.jsonl"
    turns = [{"role": "user", "content": M1}, {"role": "assistant", "content": first}]
    conversation.write_text(json.dumps({"messages": [*turns, {"role": "user", "content": M2}]}) + "\n")
    alone_1, alone_2, in_turn = _generate(runs.chat, prompts=[M1, M2], prompt_file=conversation)
    assert first == alone_1 and first, term.transcript  # greedy, as generate prints it
    assert second == in_turn  # the second reply saw the first exchange
    assert fresh == alone_2  # after /reset, a message is answered as if it were the first

    # Not a terminal: the same session line by line from a pipe (the transcript shows each message).
    piped = subprocess.run(
        [sys.executable, "-m", "trainer", "chat", f"infer.source={runs.chat}"],
        cwd=tmp_path,
        env=cli_env(),
        input=f"{M1}\n{M2}\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert piped.returncode == 0, piped.stderr[-3000:]
    assert piped.stdout.splitlines()[1:] == [f"{PROMPT}{M1}", first, f"{PROMPT}{M2}", second]


def test_ctrl_c_stops_a_reply_and_at_the_prompt_quits(tmp_path: Path) -> None:
    """The built-in model untrained (no infer.source), sampled, rambles on (near-uniform tokens, eos one
    of 384): time to interrupt it, with spaces in its text so that the streamer prints as it goes."""
    term = Terminal(["infer.max_new_tokens=200", "infer.do_sample=true", "infer.seed=7"], tmp_path)
    term.expect(PROMPT)
    whole = term.reply(M1)
    term.type(M1 + "\r")
    term.expect(M1 + "\n")
    term.some_output()
    term.type("\x03")
    cut = term.expect("(stopped)\n").replace("^C", "").removesuffix("\n")
    term.expect(PROMPT)
    # Quits even when the session inherited SIGINT ignored, as anything started by `cmd &` in a script does
    # (CI here): chat restores Ctrl-C for a terminal session. Typed the instant the prompt shows, a Ctrl-C
    # was seen to be lost (1 of 4 tries; likely before readline's wait for keys), so it comes as a
    # person's would, a moment later.
    time.sleep(0.5)
    term.type("\x03")
    assert term.exit_code() == 0, term.transcript
    assert "Traceback" not in term.transcript and "KeyboardInterrupt" not in term.transcript
    # The same seed and prompt: the stopped reply is the start of the whole one, and shorter.
    assert cut and whole.startswith(cut.rstrip("\ufffd")) and len(cut) < len(whole), (cut, whole)


# --- mistakes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["infer.source={tmp}"],
            "trainer: error: infer.source={tmp}: not a run, model or adapter folder (it has no config.yaml, "
            "config.json or adapter_config.json)",
        ),
        (
            ["infer.prompt_file=prompts.jsonl"],
            "  infer.prompt_file=prompts.jsonl: chat reads its messages from the terminal (or stdin), not "
            "from infer.prompts or infer.prompt_file; drop it, or use `trainer generate` for a list of "
            "prompts",
        ),
    ],
)
def test_mistakes_exit_2_with_one_line(tmp_path: Path, args: list[str], line: str) -> None:
    proc = run_cli(["chat", *(a.format(tmp=tmp_path) for a in args)], tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert line.format(tmp=tmp_path) in proc.stderr.splitlines(), proc.stderr
    assert "Traceback" not in proc.stderr


# --- rendering, per format (no model) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tok() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ROOT / "trainer" / "assets" / "tokenizer")


def test_history_is_rendered_as_training_renders_a_conversation(tok: Any) -> None:
    from trainer.config.dataset import ChatFormat
    from trainer.data.encoded import IGNORE, EncodeOptions
    from trainer.data.formats import encode_dataset
    from trainer.inference.conversation import Conversation

    opts = EncodeOptions(
        sequence_len=512, too_long="error", train_on_inputs=False, chat_template=tok.chat_template
    )
    turns = [
        {"role": "user", "content": M1},
        {"role": "assistant", "content": "8"},
        {"role": "user", "content": M2},
        {"role": "assistant", "content": "cba"},
    ]
    (example,), _ = encode_dataset([{"messages": turns}], ChatFormat(), tok, opts, "data")
    labels = example["labels"]
    last_reply = max(i for i in range(1, len(labels)) if labels[i - 1] == IGNORE and labels[i] != IGNORE)

    for fmt in (ChatFormat(), ChatFormat(field="conversations", style="sharegpt")):
        conv = Conversation(fmt, tok, tok.chat_template)
        alone = conv.prompt_ids(M2)
        conv.add(M1, "8")
        assert conv.prompt_ids(M2) == example["input_ids"][:last_reply]  # the prompt of the 2nd reply
        assert conv.prompt_ids(M2) != alone
        conv.reset()
        assert conv.prompt_ids(M2) == alone and conv.note == ""


def test_each_format_says_how_history_is_used(tok: Any) -> None:
    from trainer.config.dataset import AlpacaFormat, ChatFormat, CompletionFormat, InputOutputFormat
    from trainer.data.formats import generation_prompt_ids
    from trainer.inference.conversation import Conversation

    template = tok.chat_template
    as_chat = Conversation(AlpacaFormat(template="chat"), tok, template)  # alpaca rendered as a chat
    single = generation_prompt_ids({"instruction": M1}, AlpacaFormat(template="chat"), tok, template)
    assert as_chat.mode == "conversation" and as_chat.prompt_ids(M1) == single
    as_chat.add(M1, "8")
    plain = Conversation(ChatFormat(), tok, template)
    plain.add(M1, "8")
    assert as_chat.prompt_ids(M2) == plain.prompt_ids(M2)

    alpaca = Conversation(AlpacaFormat(template="alpaca_short"), tok, None)
    alpaca.add(M1, "8")
    assert alpaca.messages == [] and "history is not used" in alpaca.note
    assert alpaca.prompt_ids(M2) == tok(f"### Instruction:\n{M2}\n\n### Response:\n")["input_ids"]

    raw = Conversation(CompletionFormat(), tok, None)
    assert raw.mode == "raw" and raw.note.startswith("this model was trained on raw text (completion format)")
    assert raw.prompt_ids("abc") == [tok.bos_token_id, *tok("abc", add_special_tokens=False)["input_ids"]]
    assert "input_output format" in Conversation(InputOutputFormat(), tok, None).note


def test_a_conversation_ending_with_a_user_turn_is_all_prompt(tok: Any) -> None:
    """generate's prompt of a record [user, assistant, user] is all three turns (the chat's second
    prompt); one ending with an assistant turn stops before it, as before."""
    from trainer.config.dataset import ChatFormat
    from trainer.data.formats import generation_prompt

    turns = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    template = tok.chat_template
    asked = generation_prompt(
        {"messages": [*turns, {"role": "user", "content": "c"}]}, ChatFormat(), tok, template
    )
    assert asked == tok.apply_chat_template(
        [*turns, {"role": "user", "content": "c"}], tokenize=False, add_generation_prompt=True
    )
    answered = generation_prompt({"messages": turns}, ChatFormat(), tok, template)
    assert answered == tok.apply_chat_template(turns[:1], tokenize=False, add_generation_prompt=True)
