"""SegNet (Badrinarayanan, Kendall and Cipolla, TPAMI 2017), written here since smp has none.

Encoder: the 13 convolutional layers of VGG16 with batch normalisation, in five blocks of
(2, 2, 3, 3, 3) 3x3 convolutions (64, 128, 256, 512, 512 channels), each block followed by a
2x2 max-pooling of stride 2 that keeps its argmax indices. Decoder: the mirror image; each
block first *unpools* with the indices of the matching encoder pooling (``nn.MaxUnpool2d``: a
value goes back to the position its maximum came from, every other position is zero), then
applies 3x3 convolution + BN + ReLU layers. The last decoder layer is a 3x3 convolution to
``classes`` output channels (logits; the softmax or sigmoid belongs to the loss), as in the
authors' Caffe model (``conv1_1_D``).

``width`` scales every channel count (``round(c * width)``, at least 1); ``width=1`` is the
paper's network (29.4 M parameters with 3 inputs and 1 output), smaller widths keep the same
topology for CPU profiles.

References:
    Badrinarayanan, Kendall, Cipolla. SegNet: A Deep Convolutional Encoder-Decoder
    Architecture for Image Segmentation. IEEE TPAMI 39(12), 2017.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["SegNet", "SegNetConfig", "VGG16_BLOCKS"]

#: VGG16 encoder blocks as (number of 3x3 convolutions, output channels).
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


@dataclass(frozen=True)
class SegNetConfig:
    """SegNet options.

    Attributes:
        in_channels: input channels (3 for RGB).
        classes: output channels (logits).
        width: channel multiplier (1.0 = the paper's VGG16 widths).
    """

    in_channels: int = 3
    classes: int = 1
    width: float = 1.0

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.classes < 1:
            raise ValueError(f"in_channels and classes must be >= 1, got {self.in_channels} and {self.classes}")
        if not 0 < self.width <= 4:
            raise ValueError(f"width must be in (0, 4], got {self.width}")


def _cbr(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SegNet(nn.Module):
    """SegNet with a VGG16-BN encoder and index-unpooling decoder.

    Args:
        config: :class:`SegNetConfig`.

    Input ``(N, in_channels, H, W)`` float; output ``(N, classes, H, W)`` logits. Any H, W >= 32
    work (unpooling restores the exact pre-pooling size); multiples of 32 avoid the pooling
    dropping a last odd row or column.

    Example:
        >>> net = SegNet(SegNetConfig(width=0.125))
        >>> net(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 1, 64, 64])
    """

    def __init__(self, config: SegNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SegNetConfig()
        chans = [max(1, round(c * cfg.width)) for _, c in VGG16_BLOCKS]
        self.widths = tuple(chans)
        enc: list[nn.Sequential] = []
        cin = cfg.in_channels
        for (n, _), c in zip(VGG16_BLOCKS, chans):
            layers: list[nn.Module] = []
            for _ in range(n):
                layers += _cbr(cin, c)
                cin = c
            enc.append(nn.Sequential(*layers))
        self.encoder = nn.ModuleList(enc)
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        # Decoder block k mirrors encoder block k: same number of convolutions, all but the last
        # keep the block's width, the last maps to the width of the block above (the input of
        # encoder block k); decoder block 0 ends in the classifier convolution.
        dec: list[nn.Sequential] = []
        for k, ((n, _), c) in enumerate(zip(VGG16_BLOCKS, chans)):
            layers = []
            for _ in range(n - 1):
                layers += _cbr(c, c)
            if k == 0:
                layers.append(nn.Conv2d(c, cfg.classes, 3, padding=1))
            else:
                layers += _cbr(c, chans[k - 1])
            dec.append(nn.Sequential(*layers))
        self.decoder = nn.ModuleList(dec)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Size]]:
        """Run the encoder; returns the bottleneck, the pooling indices and pre-pooling sizes
        (both ordered from the first block to the fifth)."""
        indices: list[torch.Tensor] = []
        sizes: list[torch.Size] = []
        for block in self.encoder:
            x = block(x)
            sizes.append(x.shape)
            x, idx = self.pool(x)
            indices.append(idx)
        return x, indices, sizes

    def decode(self, x: torch.Tensor, indices: list[torch.Tensor], sizes: list[torch.Size]) -> torch.Tensor:
        """Run the decoder from the bottleneck, unpooling with the encoder's indices."""
        for k in reversed(range(len(self.decoder))):
            with warnings.catch_warnings():
                # torch flags max_unpool2d as nondeterministic (scatter). Indices of non-overlapping
                # 2x2 windows are distinct, so no two values land on one position: deterministic.
                warnings.filterwarnings("ignore", message="max_unpooling2d_forward_out does not have a deterministic")
                x = self.unpool(x, indices[k], output_size=sizes[k][-2:])
            x = self.decoder[k](x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"SegNet expects (N, {self.config.in_channels}, H, W), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < 32:
            raise ValueError(f"SegNet needs H, W >= 32 (five 2x2 poolings), got {tuple(x.shape[-2:])}")
        return self.decode(*self.encode(x))
