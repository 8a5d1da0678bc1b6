"""Averaging a preference objective's metrics over micro batches, validation batches and ranks.

Each step reports a metric as (mean, count) (step.py); the mean over a window or a validation pass is
the count-weighted mean, so it is the mean over all pairs (or examples) whatever the batch sizes.
"""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric

Stat = tuple[torch.Tensor, torch.Tensor]


def weighted_means(window: list[dict[str, Stat]]) -> dict[str, torch.Tensor]:
    """Per metric: sum(mean x count) / sum(count) over the window's batches (metrics with no count left
    out, e.g. KTO's margins in a window with no undesirable example)."""
    totals: dict[str, list[torch.Tensor]] = {}
    for stats in window:
        for key, (mean, count) in stats.items():
            acc = totals.setdefault(key, [torch.zeros(()), torch.zeros(())])
            acc[0] = acc[0] + (mean.detach().float() * count).cpu()
            acc[1] = acc[1] + count.detach().float().cpu()
    return {key: s / n for key, (s, n) in totals.items() if n > 0}


class StatMeans(torch.nn.Module):
    """One torchmetrics MeanMetric per metric name, made on first sight; compute() reduces over ranks.

    A module, so Lightning moves it with the LightningModule; metrics made later are put on the device of
    the values they receive."""

    def __init__(self) -> None:
        super().__init__()
        self.means = torch.nn.ModuleDict()
        self.names: dict[str, str] = {}  # ModuleDict key -> metric name (keys may not hold dots)

    def update(self, stats: dict[str, Stat]) -> None:
        for name, (mean, count) in stats.items():
            key = name.replace("/", "__").replace(".", "_")
            if key not in self.means:
                self.means[key] = MeanMetric().to(mean.device)
                self.names[key] = name
            if count > 0:
                self.means[key].update(mean.detach().float(), weight=count.float())

    def compute(self) -> dict[str, torch.Tensor]:
        """The means since the last call, then reset."""
        out = {self.names[key]: metric.compute() for key, metric in self.means.items()}
        for metric in self.means.values():
            metric.reset()
        return out
