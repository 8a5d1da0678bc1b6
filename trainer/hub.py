"""Hugging Face hub ids vs local paths, and a quick reachability probe.

Offline, `transformers` and `datasets` retry a hub request for about 25 s before failing with a long
traceback. One TCP connect with a short timeout tells the same thing at once, so a hub id on a machine
without the hub fails fast, with a message that says how to use a local path instead.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from trainer.errors import UserError

PROBE_TIMEOUT_S = 3.0


FILE_SUFFIXES = frozenset({".json", ".jsonl", ".parquet", ".csv", ".txt", ".arrow"})


def looks_local(path: str) -> bool:
    """A hub id is `name` or `org/name` (dots allowed: Llama-3.2-1B); a path exists, starts with / . ~,
    ends in a data-file suffix, or has 3+ parts."""
    p = Path(path).expanduser()
    return p.exists() or path.startswith(("/", ".", "~")) or p.suffix in FILE_SUFFIXES or len(p.parts) > 2


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def require_hub(source: str, key: str, hint: str) -> None:
    """Raise a UserError now if `source` (a hub id from config key `key`) cannot be fetched.

    With HF_HUB_OFFLINE=1 the libraries read their local cache and fail fast on their own: no probe.
    """
    if _offline():
        return
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = (
        endpoint.hostname or "huggingface.co",
        endpoint.port or (443 if endpoint.scheme == "https" else 80),
    )
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as err:
        raise UserError(
            f"{key}={source}: not a local path, and the Hugging Face hub ({host}) cannot be reached ({err})",
            hint=hint + " (or set HF_HUB_OFFLINE=1 to use copies already in the local Hugging Face cache)",
        ) from None
