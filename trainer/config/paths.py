"""Local paths vs Hugging Face hub ids, told apart without touching the network.

The config rules (does this data file exist?), the early hub probe and the loaders must agree on what
is a path, so the test lives here, with the one list of data-file suffixes (`SUFFIX_TYPES`).
Standard library only.
"""

from __future__ import annotations

from pathlib import Path

# Local data files by extension (file_type=auto): data/sources.py reads them, the rules check them early.
SUFFIX_TYPES = {".json": "json", ".jsonl": "jsonl", ".parquet": "parquet", ".csv": "csv", ".txt": "text"}


def looks_local(path: str) -> bool:
    """A hub id is `name` or `org/name` (dots allowed: Llama-3.2-1B); a path exists, starts with / . ~,
    ends in a data-file suffix, or has 3+ parts."""
    p = Path(path).expanduser()
    return (
        p.exists() or path.startswith(("/", ".", "~")) or p.suffix.lower() in SUFFIX_TYPES or len(p.parts) > 2
    )


# The fix for a local path that is not there, wherever it is found (config rules, loaders).
LOCAL_PATH_FIX = (
    "check the path (a relative path starts where you run the command); a hub id is org/name, "
    "with no leading / . or ~"
)


def missing_local(path: str) -> bool:
    """A value that is a local path by `looks_local` but is not there: never worth a hub lookup, whose
    failure would only suggest downloading a "hub id" like /models/Llama-3.2-1B."""
    return looks_local(path) and not Path(path).expanduser().exists()
