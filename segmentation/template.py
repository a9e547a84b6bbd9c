"""How to add a segmentation architecture: copy this file to ``segmentation/<name>.py`` and fill it in.

1. A frozen config dataclass. Keep ``in_channels`` (3: RGB) and ``classes`` (the output channels:
   ``segmentation.train`` sets it from the training target, 1 for ``binary``); give every field a
   default and validate in ``__post_init__`` with ValueError (``gbench segment`` turns it into one
   line, exit 2).
2. The network: an ``nn.Module`` built from the config (its class, or a builder function
   ``config -> nn.Module``). Input ``(N, in_channels, H, W)`` float in [0, 1] with ``H`` and ``W``
   multiples of 32 (training crops and the mirror-padded test tiles are); output
   ``(N, classes, H, W)`` logits (the loss applies the sigmoid or softmax). Draw nothing from a
   global seed yourself: ``segmentation.train`` seeds torch before building the network, so the
   same seed gives the same weights. Never download weights.
3. One line in ``segmentation/__init__.py`` (``_register_builtins``)::

       SEGMENTERS.register("my-net", SegmenterEntry(MyNetConfig, MyNet, "one line", label="My-Net"))

   Registration checks the contract (:class:`segmentation.SegmenterEntry`): a config that is
   not a frozen dataclass with ``in_channels`` and ``classes`` is a TypeError at import.
4. One ``SegmenterSection`` per profile in ``gbench/core/profiles.py`` (``segmenters=(...)`` of
   ``SMOKE``, ``DEMO``, ``PAPER``): the model options for that profile and how it trains (crop,
   batch, lr, steps, validation). A profile without a section for the architecture is an error
   naming both (:class:`gbench.core.profiles.ProfileError`), never a silent fallback.
5. Nothing else: ``gbench segment --arch my-net`` and ``gbench.pipelines.segmentation_grid`` find it
   in the registry, and ``tests/segmentation/test_registered.py`` runs every registered
   architecture through its smoke path (a couple of training steps on CPU, then scoring).

Below: a complete, working (but deliberately small) example, not registered: a two-level
encoder-decoder with one skip connection.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["TemplateNetConfig", "TemplateNet"]


@dataclass(frozen=True)
class TemplateNetConfig:
    """Options of the template network.

    Attributes:
        in_channels: input channels (3 for RGB).
        classes: output channels (logits).
        width: channels of the first level (the second has twice as many).
    """

    in_channels: int = 3
    classes: int = 1
    width: int = 8

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.classes < 1:
            raise ValueError(f"in_channels and classes must be >= 1, got {self.in_channels} and {self.classes}")
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width}")


def _cbr(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TemplateNet(nn.Module):
    """Conv block -> 2x2 max-pool -> conv block -> nearest x2 -> conv block, concatenated with the
    first level (a U-Net with one level) -> 1x1 convolution to ``classes`` logits.

    Example:
        >>> net = TemplateNet(TemplateNetConfig(width=4))
        >>> net(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 1, 64, 64])
    """

    def __init__(self, config: TemplateNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or TemplateNetConfig()
        w = cfg.width
        self.enc = _cbr(cfg.in_channels, w)
        self.down = nn.Sequential(nn.MaxPool2d(2), _cbr(w, 2 * w))
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _cbr(2 * w, w))
        self.head = nn.Conv2d(2 * w, cfg.classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.enc(x)
        return self.head(torch.cat([skip, self.up(self.down(skip))], dim=1))
