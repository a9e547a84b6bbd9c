"""The options of issue 16: resize-convolution up-sampling, the focus-structured G2, the paired L1,
the per-profile settings (``paper`` keeps the paper's layers and kernels)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from gbench.core.profiles import DEMO, PAPER
from gbench.generators.mi_gan import (
    MIGAN,
    FocusStructuredGenerator,
    GaussianBank,
    MIGANConfig,
    MultiFocusGenerator,
    config_for_profile,
)

SMALL = dict(image_size=32, g1_width=4, d1_width=4, g2_width=4, d2_width=2, latent_channels=8, resnet_channels=8,
             critic_norm="layer")


def test_gaussian_bank_matches_scipy() -> None:
    bank = GaussianBank((0.0, 0.5, 2.25, 4.75), 64)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    y = bank(x)
    assert y.shape == (2, 4, 3, 64, 64)
    torch.testing.assert_close(y[:, 0], x)  # width 0: the identity
    for j, s in enumerate((0.5, 2.25, 4.75), start=1):
        ref = ndimage.gaussian_filter(x[1, 2].double().numpy(), s, mode="nearest", truncate=4.0)
        np.testing.assert_allclose(y[1, j, 2].double().numpy(), ref, atol=2e-6)
    half = GaussianBank((2.0,), 32)  # widths are given at 64 px and scaled with the side
    ref = ndimage.gaussian_filter(x[0, 0, :32, :32].double().numpy(), 1.0, mode="nearest", truncate=4.0)
    np.testing.assert_allclose(half(x[:1, :1, :32, :32])[0, 0, 0].double().numpy(), ref, atol=2e-6)


def test_focus_g2_starts_as_the_identity_and_learns_through_every_part() -> None:
    cfg = MIGANConfig(g2_arch="focus", upsample="resize", **SMALL)
    gan = MIGAN(cfg, seed=0)
    assert isinstance(gan.g2, FocusStructuredGenerator)
    base = torch.rand(3, 3, 32, 32) * 2 - 1
    zero = torch.zeros(3, 3, 11, 32, 32)
    stack = gan.g2(base, zero)
    assert stack.shape == (3, 3, 11, 32, 32)
    # every plane starts as I0 (identity weight of the softmax ~0.98; no residual; noise off)
    assert float((stack - base[:, :, None]).abs().max().detach()) < 0.1
    a, gains, _ = gan.g2.psf_weights(base)
    torch.testing.assert_close(a.sum(-1), torch.ones(3, 11))  # weights sum to 1: brightness kept
    opt = torch.optim.Adam(gan.g2.parameters(), lr=1e-3)
    for step in range(2):  # the head starts at zero: the encoder and the 3D ResNet get gradients after one step
        noisy, clean = gan.g2(base, return_clean=True)
        if step == 0:
            assert float((noisy - clean).std().detach()) == pytest.approx(0.01, rel=0.2)  # NOISE_INIT camera noise
        opt.zero_grad()
        (noisy - 0.5).abs().mean().backward()
        opt.step()
    params = dict(gan.g2.named_parameters())
    for name in ("psf_table", "head.weight", "noise_level", "residual_scale", "plane_embed", "encoder.0.weight",
                 "resnet.blocks.0.body.0.weight"):
        assert params[name].grad is not None and float(params[name].grad.abs().sum()) > 0, name


def test_focus_g2_fits_a_defocus_with_the_paired_l1() -> None:
    """Supervised by the L1 term alone, the PSF table learns a blur: plane I+5 gets blurrier than I0."""
    torch.manual_seed(0)
    cfg = MIGANConfig(g2_arch="focus", g2_residual=False, **SMALL)
    g2 = MIGAN(cfg, seed=0).g2
    base = torch.rand(4, 3, 32, 32) * 2 - 1
    target = torch.stack([torch.from_numpy(ndimage.gaussian_filter(base.numpy(), (0, 0, abs(k) * 0.5, abs(k) * 0.5),
                                                                   mode="nearest")) for k in range(-5, 6)], 2)
    opt = torch.optim.Adam(g2.parameters(), lr=5e-4, betas=(0.0, 0.9))
    first = None
    for _ in range(40):
        _, clean = g2(base, return_clean=True)
        loss = (clean - target).abs().mean()
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first


def test_resize_upsampling_has_no_transposed_convs_and_same_shapes() -> None:
    for mode in ("resize", "bilinear"):
        gan = MIGAN(MIGANConfig(upsample=mode, **SMALL), seed=0)
        assert not [m for m in gan.g1.up.modules() if isinstance(m, nn.ConvTranspose2d)]  # (the 1x1 -> 4x4 projection stays)
        assert [m.mode for m in gan.g1.modules() if isinstance(m, nn.Upsample)] == \
            ["nearest" if mode == "resize" else "bilinear"] * 3
        assert gan.g1(torch.randn(2, 100)).shape == (2, 3, 32, 32)
        assert gan.g2(torch.rand(2, 3, 32, 32)).shape == (2, 3, 11, 32, 32)  # paper G2, resize decoders
    with pytest.raises(ValueError, match="upsample"):
        MIGANConfig(upsample="pixelshuffle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="g2_arch"):
        MIGANConfig(g2_arch="unet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="g2_l1"):
        MIGANConfig(g2_l1=-1)


def test_profiles_paper_is_literal_demo_uses_the_fixes() -> None:
    paper = config_for_profile(PAPER)
    assert (paper.upsample, paper.g2_arch, paper.latent_channels, paper.resnet_channels, paper.g2_l1, paper.n_critic) \
        == ("transposed", "paper", 3, 3, 0.0, 5)
    assert PAPER.migan.options == ()
    gan = MIGAN(MIGANConfig(**{**paper.to_dict(), "g1_width": 4, "d1_width": 4, "g2_width": 4, "d2_width": 2}))
    assert isinstance(gan.g2, MultiFocusGenerator)
    ups = [m for m in gan.g1.up.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(ups) == 4 and all(c.kernel_size == (6, 6) for c in ups)
    demo = config_for_profile(DEMO)
    assert demo.g2_arch == "focus" and demo.upsample != "transposed" and demo.g2_l1 > 0
    assert MIGANConfig.from_dict(demo.to_dict()) == demo  # psf_sigmas survive the JSON round trip


def test_sampling_with_the_focus_g2_is_deterministic() -> None:
    gan = MIGAN(MIGANConfig(g2_arch="focus", upsample="resize", **SMALL), seed=0).eval()
    a = gan.sample(3, seed=5)
    assert a.shape == (3, 11, 32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, gan.sample(3, seed=5))
    assert not np.array_equal(a, gan.sample(3, seed=6))


def test_precise_batch_norm_sets_the_exact_statistics() -> None:
    from gbench.generators.mi_gan import precise_batch_norm

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    batches = [torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(i)) * (i + 1) for i in range(3)]
    batches.append(torch.randn(2, 3, 8, 8))  # batches of different sizes and scales: pooled, not averaged
    net.eval()
    before = [p.clone() for p in net.parameters()]
    assert precise_batch_norm(net, batches) == 1
    assert not net.training and all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    with torch.no_grad():
        y = torch.cat([net[0](b) for b in batches])
    torch.testing.assert_close(net[1].running_mean, y.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(net[1].running_var, y.var(dim=(0, 2, 3), unbiased=True))


def test_lr_decay_is_linear_over_the_last_share_of_the_phase() -> None:
    gan = MIGAN(MIGANConfig(lr=1e-3, lr_decay=0.5, g2_lr=2e-3, **SMALL), seed=0)
    m = gan.phase("g1")
    m.total_steps = 100
    assert [m.lr_at(s) for s in (0, 49, 50)] == [1e-3, 1e-3, 1e-3]
    assert m.lr_at(75) == pytest.approx(0.5e-3) and m.lr_at(99) == pytest.approx(2e-5) and m.lr_at(100) == 0.0
    assert gan.phase("g2").base_lr == 2e-3
    const = MIGAN(MIGANConfig(lr=1e-3, **SMALL), seed=0).phase("g1")
    const.total_steps = 100
    assert const.lr_at(99) == 1e-3  # the paper: constant
    with pytest.raises(ValueError, match="lr_decay"):
        MIGANConfig(lr_decay=1.5)
