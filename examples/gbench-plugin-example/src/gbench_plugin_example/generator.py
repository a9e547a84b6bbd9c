"""``tiny-painter``: a frozen, pretrained generator gbench never trains.

A two-layer conv net (distance map -> 8 channels, ReLU -> RGB, sigmoid) whose weights live in
its own ``.npz`` file (``weights/tiny_painter.npz``, made by ``make_weights.py``); ``--checkpoint
PATH`` loads another file of the same layout. It follows :class:`gbench.api.FrozenGenerator`:
``conditioning`` and ``generate(maps) -> images``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gbench.api import FrozenGenerator

DEFAULT_WEIGHTS = Path(__file__).with_name("weights") / "tiny_painter.npz"
KEYS = ("w1", "b1", "w2", "b2")


class TinyPainter(nn.Module, FrozenGenerator):
    """Distance map (N, 1, H, W) in [0, 1] -> RGB (N, 3, H, W) in [0, 1]."""

    conditioning = "distance"

    def __init__(self, checkpoint: str | None = None) -> None:
        super().__init__()
        path = Path(checkpoint) if checkpoint is not None else DEFAULT_WEIGHTS
        with np.load(path, allow_pickle=False) as z:  # our own format: a plain .npz of float32 arrays
            missing = [k for k in KEYS if k not in z.files]
            if missing:
                raise ValueError(f"{path.name} lacks the array(s) {', '.join(missing)}")
            for k in KEYS:
                self.register_buffer(k, torch.from_numpy(z[k].astype(np.float32)))

    def generate(self, maps: torch.Tensor) -> torch.Tensor:
        h = F.relu(F.conv2d(maps, self.w1, self.b1, padding=1))
        return torch.sigmoid(F.conv2d(h, self.w2, self.b2, padding=1))
