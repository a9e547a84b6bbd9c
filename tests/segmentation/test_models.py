"""Segmenters: registry, SegNet topology against torchvision's VGG16-BN, index unpooling."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gbench import segmentation
from gbench.segmentation.segnet import SegNet, SegNetConfig


@pytest.mark.parametrize("name", segmentation.available())
def test_every_registered_segmenter_forwards(name: str) -> None:
    small = {"unet": {"encoder": "resnet18"}, "segnet": {"width": 0.125}}.get(name, {})
    net = segmentation.create(name, classes=3, **small).eval()
    with torch.no_grad():
        y = net(torch.rand(1, 3, 64, 64))
    assert y.shape == (1, 3, 64, 64)
    assert torch.isfinite(y).all()


def test_registry_errors() -> None:
    with pytest.raises(KeyError, match="did you mean segnet"):
        segmentation.create("segnett")
    with pytest.raises(ValueError, match="no option.*encoderr"):
        segmentation.create("unet", encoderr="resnet18")
    with pytest.raises(ValueError, match="unknown smp encoder"):
        segmentation.create("unet", encoder="resnet19")
    with pytest.raises(ValueError, match="width"):
        segmentation.create("segnet", width=0)


def test_unet_never_downloads_by_default() -> None:
    assert segmentation.config_for("unet").encoder_weights is None


def test_segnet_encoder_is_vgg16_bn() -> None:
    """The 13 encoder convolutions have the shapes of torchvision's vgg16_bn features."""
    from torchvision.models import vgg16_bn

    ref = [m.weight.shape for m in vgg16_bn(weights=None).features if isinstance(m, nn.Conv2d)]
    net = SegNet(SegNetConfig())
    ours = [m.weight.shape for m in net.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert len(ours) == 13 and ours == ref
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.encoder.modules()) == 13
    # the decoder mirrors it block by block: convolutions reversed with in/out swapped, the
    # mirror of the very first one (3 -> 64) being the classifier (64 -> classes)
    ref_io = [(int(s[1]), int(s[0])) for s in ref]
    blocks, start = [], 0
    for n in (2, 2, 3, 3, 3):
        blocks.append(ref_io[start:start + n])
        start += n
    for k, block in enumerate(net.decoder):
        got = [(m.in_channels, m.out_channels) for m in block.modules() if isinstance(m, nn.Conv2d)]
        want = [(o, i) for i, o in reversed(blocks[k])]
        if k == 0:
            want[-1] = (64, 1)
        assert got == want


def test_segnet_shapes_and_width() -> None:
    net = SegNet(SegNetConfig(classes=2, width=0.25)).eval()
    assert net.widths == (16, 32, 64, 128, 128)
    with torch.no_grad():
        assert net(torch.rand(2, 3, 64, 96)).shape == (2, 2, 64, 96)
        assert net(torch.rand(1, 3, 70, 45)).shape == (1, 2, 70, 45)  # odd sizes restored exactly
    with pytest.raises(ValueError, match="expects"):
        net(torch.rand(1, 1, 64, 64))


def _literal_argmax_positions(x: np.ndarray) -> set[tuple[int, int, int]]:
    """(channel, row, col) of the maximum of every 2x2 window, first maximum in row-major order."""
    c, h, w = x.shape
    out = set()
    for k in range(c):
        for i in range(0, h - 1, 2):
            for j in range(0, w - 1, 2):
                win = x[k, i:i + 2, j:j + 2]
                di, dj = np.unravel_index(np.argmax(win), win.shape)
                out.add((k, i + int(di), j + int(dj)))
    return out


def test_unpooling_puts_values_at_the_argmax_positions() -> None:
    net = SegNet(SegNetConfig(width=0.125))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 4, 8, 10, generator=g) + 0.1  # positive: zero means "not a maximum"
    pooled, idx = net.pool(x)
    up = net.unpool(pooled, idx, output_size=x.shape[-2:])
    nz = {(int(c), int(i), int(j)) for c, i, j in zip(*np.nonzero(up[0].numpy()))}
    assert nz == _literal_argmax_positions(x[0].numpy())
    for c, i, j in nz:
        assert up[0, c, i, j] == x[0, c, i, j]


def test_decoder_unpools_with_the_matching_encoder_indices() -> None:
    net = SegNet(SegNetConfig(width=0.125)).eval()
    pooled_idx: list[torch.Tensor] = []
    unpool_idx: list[torch.Tensor] = []
    net.pool.register_forward_hook(lambda m, inp, out: pooled_idx.append(out[1].clone()))
    net.unpool.register_forward_hook(lambda m, inp, out: unpool_idx.append(inp[1].clone()))
    with torch.no_grad():
        net(torch.rand(1, 3, 64, 64))
    assert len(pooled_idx) == len(unpool_idx) == 5
    for a, b in zip(pooled_idx, reversed(unpool_idx)):  # decoder block k uses encoder block k's indices
        assert torch.equal(a, b)
