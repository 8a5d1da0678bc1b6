"""The one table from config dtype names (`model.dtype`, `parallelism.reduce_dtype`) to torch dtypes."""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def compute_dtype(precision: str) -> torch.dtype:
    """The dtype a Lightning precision computes in: bf16-* -> bfloat16, 16-* -> float16, else float32."""
    return {"bf16": torch.bfloat16, "16": torch.float16}.get(precision.split("-")[0], torch.float32)
