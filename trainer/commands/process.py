"""Process-wide setup, done once by each command after its config is validated: warning filters and
log handlers for what the libraries print, their progress bars, environment variables.

Kept out of `train()` and the inference code, which tests call directly: they stay plain functions.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

# Expected on these setups and saying nothing actionable to a user.
_KNOWN_NOISE = (
    ".*does not have many workers.*",
    ".*LeafSpec.*",
    ".*litlogger.*",
    ".*srun.*",
    ".*sync_dist=True.*",
    # Our sampler resumes by the restored step (trainer/data/sampler.py), which Lightning cannot see.
    ".*dataloader is not resumable.*",
    ".*is_gradient_checkpointing.*",
    # The collators read the cache's read-only arrays without copying; nothing writes to those tensors.
    ".*NumPy array is not writable.*",
)


def setup(on_gpu: bool) -> None:
    """Quiet the libraries; route Lightning's records (when it is loaded: call this after importing it)
    through our handlers (the run's log file gets INFO, the terminal WARNING), so the terminal shows
    our summaries and the progress bar."""
    for pattern in _KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    if not on_gpu:  # transformers' save_pretrained imports deepspeed, which warns while guessing
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    if "lightning" in sys.modules:  # it attaches a console handler of its own on import
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            lg = logging.getLogger(name)
            lg.handlers.clear()
            lg.propagate = True
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
