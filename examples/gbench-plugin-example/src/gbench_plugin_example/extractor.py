"""``colour-stats``: a weight-free feature extractor (per-channel means over a 4x4 grid, 48-d).

Not comparable with Inception FID; deterministic and offline, like gbench's ``random-conv``.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from gbench.api import FeatureExtractor


class ColourStats(FeatureExtractor):
    def __init__(self) -> None:
        super().__init__()
        self.spec = "colour-stats"
        self.num_features = 48
        self.resize = "adaptive average pooling to 4x4, [0, 1]"
        self.note = "colour-stats features (example plugin): not comparable with published FID"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return F.adaptive_avg_pool2d(x.float() / 255.0, 4).reshape(x.shape[0], -1)


def colour_stats(weights: Path | None = None, *, seed: int = 0, device: object = None) -> ColourStats:
    if weights is not None:
        raise ValueError("colour-stats has no weights file")
    return ColourStats()
