"""Hugging Face hub ids vs local paths, and a quick reachability probe.

Offline, `transformers` and `datasets` retry a hub request for about 25 s before failing with a long
traceback. One TCP connect with a short timeout tells the same thing at once, so a hub id on a machine
without the hub fails fast, with a message that says how to use a local path instead.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

from trainer.config.paths import looks_local
from trainer.errors import UserError

PROBE_TIMEOUT_S = 3.0


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def download_hint(key: str, source: str) -> str:
    """How to get `source` onto this machine and point config key `key` at it."""
    if key.startswith("data."):
        return f"download it where the hub is reachable and pass a local file: {key}=/path/to/data.json"
    return f"download it where the hub is reachable (hf download {source} --local-dir DIR) and pass {key}=DIR"


def require_hub(source: str, key: str) -> None:
    """Raise a UserError now if `source` (a hub id from config key `key`) cannot be fetched.

    With HF_HUB_OFFLINE=1 the libraries read their local cache and fail fast on their own: no probe.
    """
    if _offline():
        return
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    error = _probe(host, port)
    if error is not None:
        raise UserError(
            f"{key}={source}: not a local path, and the Hugging Face hub ({host}) cannot be reached: {error}",
            hint=download_hint(key, source) + " (or HF_HUB_OFFLINE=1 to use the local Hugging Face cache)",
        )


@functools.lru_cache(maxsize=8)
def _probe(host: str, port: int) -> str | None:
    """One connect per host and process: the launcher's early check and the loaders share the answer."""
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as err:
        return str(err)
    return None


def preflight(sources: dict[str, str | None]) -> None:
    """Check every hub id among `sources` (config key -> value) before anything heavy is imported."""
    for key, source in sources.items():
        if source is not None and not looks_local(source):
            require_hub(source, key)
