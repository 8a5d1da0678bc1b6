"""Write benchmarks/gpu/alpaca_lengths.json: the token length of every alpaca_en_demo example.

Why: the GPU check compares packed with padded batches on real instruction lengths, but the device has
neither the data file (../shared/data is not in the tree that travels) nor `datasets`. The lengths alone
are enough: the check fills examples of those lengths with random tokens. They are the lengths the
project's own pipeline gives (`prepare_data`, standard alpaca template, Llama 2's tokenizer, as in
benchmarks/data_pipeline.py), at sequence_len 2048 with too-long examples dropped.

Run once here (needs ../shared/data and sentencepiece): .venv/bin/python benchmarks/gpu/alpaca_lengths.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: data_pipeline's helpers

from data_pipeline import ALPACA, ALPACA_FMT, data_config, llama_tokenizer  # noqa: E402

from trainer.data.prepare import prepare_data  # noqa: E402

OUT = Path(__file__).resolve().parent / "alpaca_lengths.json"
SEQUENCE_LEN = 2048


def main() -> None:
    tok = llama_tokenizer()
    if tok is None or not ALPACA.exists():
        sys.exit(f"needs {ALPACA} and the Llama 2 tokenizer (see benchmarks/data_pipeline.py)")
    data = prepare_data(data_config(ALPACA, ALPACA_FMT, SEQUENCE_LEN), tok, 1234)
    lengths = [int(n) for n in data.examples.lengths]
    record = {
        "source": f"{ALPACA.name}, alpaca template, Llama 2 tokenizer, too_long=drop",
        "sequence_len": SEQUENCE_LEN,
        "lengths": lengths,
    }
    OUT.write_text(json.dumps(record) + "\n")
    print(f"{len(lengths)} lengths, mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)} -> {OUT}")


if __name__ == "__main__":
    main()
