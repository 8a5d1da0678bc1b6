"""The shared base of every config model: strict and immutable.

`extra="forbid"` is what catches a typo written inside a YAML file or a key added with `+` (Hydra's
struct mode only catches CLI typos of existing keys). `frozen=True` because the validated config is
the single source of truth handed to every rank: nothing downstream may change it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
