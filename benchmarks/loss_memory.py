"""Peak memory and time of one training step with the plain loss and with `model.loss_chunk_tokens`.

Why: with a 128k vocabulary the logits (tokens x vocabulary, upcast to fp32 for the loss) are the
largest activation of a small model; the chunked loss (trainer/models/scoring.py) holds one chunk of
them at a time and computes the output layer twice. This measures both on the CPU, on a Llama with
Llama 3's vocabulary (128,256) and a narrow body, so the logits dominate as they do on a GPU at 1B.

Each mode runs in a fresh process (the allocator keeps what a previous mode freed); the peak is the
highest resident set a thread samples every millisecond during the step, minus the resident set just
before it. Printed: each
mode's peak and step time, and chunked / plain ratios, measured in the same run.

Run: .venv/bin/python benchmarks/loss_memory.py [--smoke]   (about 3 minutes on 2 cores; --smoke: 25 s)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class PeakRss:
    """The highest resident set seen while the `with` block runs, sampled by a thread each millisecond."""

    def __enter__(self) -> PeakRss:
        self.peak, self.done = rss_mib(), threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.done.wait(0.001):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, rss_mib())


def one_mode(mode: str, vocab: int, seq: int, rows: int, chunk: int) -> dict[str, float]:
    """One forward + backward in this process: the plain token loss over full logits, or the chunked one."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainer.models.scoring import chunked_token_loss, token_loss

    torch.manual_seed(0)
    torch.set_num_threads(2)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=seq, tie_word_embeddings=True,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    ids = torch.randint(3, vocab, (rows, seq))
    losses, times, peaks = [], [], []
    for _ in range(2):  # the second step is measured: the first one pays for first-call allocations
        model.zero_grad(set_to_none=True)
        before = rss_mib()
        start = time.perf_counter()
        with PeakRss() as rss:
            if mode == "plain":
                total, count = token_loss(model(input_ids=ids, use_cache=False).logits, ids)
            else:
                hidden = model.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state
                total, count = chunked_token_loss(hidden, model.get_output_embeddings(), ids, chunk)
            (total / count).backward()
        times.append(time.perf_counter() - start)
        peaks.append(rss.peak - before)
        losses.append(float(total / count))
    return {"loss": losses[-1], "seconds": times[-1], "peak_mib": peaks[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--mode", choices=["plain", "chunked"], help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args()
    vocab, seq, rows, chunk = (32000, 256, 2, 128) if args.smoke else (128256, 2048, 2, 1024)
    if args.mode:
        print(json.dumps(one_mode(args.mode, vocab, seq, rows, chunk)))
        return
    results = {}
    for mode in ("plain", "chunked"):
        cmd = [sys.executable, __file__, "--mode", mode, *(["--smoke"] if args.smoke else [])]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    logits_mib = rows * seq * vocab * 4 / 2**20
    print(f"vocabulary {vocab}, {rows} x {seq} tokens, chunks of {chunk}: fp32 logits = {logits_mib:.0f} MiB")
    for mode, r in results.items():
        print(f"  {mode:8s} loss {r['loss']:.6f}  step {r['seconds']:.2f} s  peak {r['peak_mib']:.0f} MiB")
    plain, chunked = results["plain"], results["chunked"]
    print(
        f"chunked / plain: peak {chunked['peak_mib'] / plain['peak_mib']:.2f}, "
        f"step time {chunked['seconds'] / plain['seconds']:.2f}, "
        f"loss difference {abs(chunked['loss'] - plain['loss']):.2e}"
    )


if __name__ == "__main__":
    main()
