"""U-Net from segmentation-models-pytorch with a configurable encoder and no downloads.

``encoder_weights`` is ``None`` by default: the encoder starts from random initialisation
(gbench never downloads weights). The Sharp-GAN paper cites the original U-Net (Ronneberger et
al. 2015) without naming an encoder; the smp default encoder ``resnet34`` is the default here,
and CPU profiles pick ``resnet18`` (see ``gbench.core.profiles``: ``Profile.segmenters``).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

import segmentation_models_pytorch as smp
from segmentation_models_pytorch.encoders.resnet import ResNetEncoder
from torch import nn

__all__ = ["UNetConfig", "build_unet"]


@dataclass(frozen=True)
class UNetConfig:
    """smp U-Net options.

    Attributes:
        encoder: smp encoder name (``resnet18``, ``resnet34``, ``vgg16_bn``, ...).
        encoder_weights: smp pretrained-weight name; ``None`` (random init, no download).
        encoder_depth: number of encoder stages (3 to 5); input sides must be multiples of
            ``2 ** encoder_depth``.
        decoder_channels: decoder widths, one per stage (deepest first).
        in_channels: input channels.
        classes: output channels (logits).
    """

    encoder: str = "resnet34"
    encoder_weights: str | None = None
    encoder_depth: int = 5
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    in_channels: int = 3
    classes: int = 1

    def __post_init__(self) -> None:
        names = smp.encoders.get_encoder_names()
        if self.encoder not in names:
            hint = difflib.get_close_matches(self.encoder, names, n=3)
            raise ValueError(f"unknown smp encoder {self.encoder!r}" + (f"; did you mean {', '.join(hint)}?" if hint else ""))
        if not 3 <= self.encoder_depth <= 5:
            raise ValueError(f"encoder_depth must be 3, 4 or 5, got {self.encoder_depth}")
        if len(self.decoder_channels) != self.encoder_depth:
            raise ValueError(f"decoder_channels needs {self.encoder_depth} entries (one per stage), "
                             f"got {len(self.decoder_channels)}")
        if self.in_channels < 1 or self.classes < 1:
            raise ValueError("in_channels and classes must be >= 1")


def build_unet(config: UNetConfig | None = None) -> nn.Module:
    """An ``smp.Unet`` built from ``config`` (random init unless ``encoder_weights`` is set).

    Example:
        >>> net = build_unet(UNetConfig(encoder="resnet18"))
        >>> net(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 1, 64, 64])
    """

    cfg = config or UNetConfig()
    net = smp.Unet(encoder_name=cfg.encoder, encoder_weights=cfg.encoder_weights, encoder_depth=cfg.encoder_depth,
                   decoder_channels=list(cfg.decoder_channels), in_channels=cfg.in_channels, classes=cfg.classes)
    _drop_unused_stages(net.encoder, cfg.encoder_depth)
    return net


def _drop_unused_stages(encoder: nn.Module, depth: int) -> None:
    """Remove the ResNet stages a shallower encoder never runs.

    smp's ``ResNetEncoder`` keeps ``layer4`` (and ``layer3``) when ``encoder_depth`` < 5 but its
    forward stops before them: unused parameters that would fill checkpoints (``layer4`` is 8.4 M
    of resnet18's 11.2 M) and leave DistributedDataParallel waiting for gradients that never
    come. Other encoders are left as smp builds them.
    """

    if not isinstance(encoder, ResNetEncoder):
        return
    for stage in range(depth, 5):  # stage k (1-based) is layer{k-1}; depth d runs stages 1..d
        name = f"layer{stage}"
        if hasattr(encoder, name):
            delattr(encoder, name)
