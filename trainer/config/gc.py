"""`gc:` when Python's garbage collector runs during training (keys in trainer/conf/train.yaml).

Automatic collection pauses a rank at unpredictable moments; with many ranks, every collective waits
for the slowest one. `manual` turns the automatic collector off and collects on a fixed step period, so
all ranks pause together and briefly (young generations only, which is where training garbage lives).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trainer.config.base import StrictModel
from trainer.config.period import Period


class GcConfig(StrictModel):
    mode: Literal["auto", "manual"] = Field(
        "auto", description="auto = Python's own collector; manual = collect only every `every` steps."
    )
    every: Period = Field("disable", description="With mode=manual: collect every N steps (a period).")
    generation: Literal[0, 1, 2] = Field(
        1, description="Oldest generation collected at each manual collection (2 = full, slowest)."
    )
