"""``tiny-seg``: a small fully convolutional segmenter (two 3x3 conv-BN-ReLU blocks and a 1x1 head).

No built-in profile has a section for it, so it trains with the profile's SegNet schedule
(``like="segnet"``: crop, batch, learning rate, steps; not SegNet's model options).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from gbench.api import SegmenterEntry


@dataclass(frozen=True)
class TinySegConfig:
    in_channels: int = 3
    classes: int = 2
    width: int = 8


def build(cfg: TinySegConfig) -> nn.Module:
    w = cfg.width
    return nn.Sequential(
        nn.Conv2d(cfg.in_channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
        nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
        nn.Conv2d(w, cfg.classes, 1),
    )


SEGMENTER = SegmenterEntry(TinySegConfig, build, "example plugin: two conv blocks and a 1x1 head", label="TinySeg",
                           like="segnet")
