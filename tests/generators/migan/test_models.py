"""MI-GAN networks: every shape of the paper's architecture, the gradient penalty, sampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gbench import generators
from gbench.generators.mi_gan import (MIGAN, BaseCritic, MIGANConfig, StackCritic, gradient_penalty)

TINY = dict(g1_width=4, d1_width=4, g2_width=4, d2_width=2)


@pytest.fixture(scope="module")
def gan() -> MIGAN:
    return MIGAN(MIGANConfig(**TINY), seed=0)  # the paper's 64x64x11 geometry, tiny widths


def _convs(module: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in module.modules() if type(m) is kind]


def test_every_shape_of_the_paper_architecture(gan: MIGAN) -> None:
    torch.manual_seed(0)
    z = torch.randn(3, 100)
    base = gan.g1(z)
    assert base.shape == (3, 3, 64, 64) and base.abs().max() <= 1
    volume = gan.g2.encode(base)
    assert volume.shape == (3, 3, 11, 4, 4)  # eleven encodings 3x4x4 stacked to 11x3x4x4 (depth 11)
    for k in range(11):
        assert volume[:, :, k].shape == (3, 3, 4, 4)
    assert gan.g2.resnet(volume).shape == volume.shape
    stack = gan.g2.decode(gan.g2.resnet(volume))
    assert stack.shape == (3, 3, 11, 64, 64)
    assert gan.g2(base).shape == (3, 3, 11, 64, 64)
    assert gan.d1(base).shape == (3,)
    assert gan.d2(stack).shape == (3,)
    # the layer counts and hyper-parameters the paper states
    ups = _convs(gan.g1.up, nn.ConvTranspose2d)
    assert len(ups) == 4 and all(c.kernel_size == (6, 6) and c.stride == (2, 2) and c.padding == (2, 2) for c in ups)
    d1 = _convs(gan.d1, nn.Conv2d)
    assert len(d1) == 6 and all(c.kernel_size == (5, 5) for c in d1)
    enc = _convs(gan.g2.encoders, nn.Conv2d)
    assert len(enc) == 4 and all(c.kernel_size == (6, 6) and c.stride == (2, 2) and c.padding == (2, 2) and c.groups == 11
                                 for c in enc)
    dec = _convs(gan.g2.decoders, nn.ConvTranspose2d)
    assert len(dec) == 4 and all(c.kernel_size == (6, 6) and c.groups == 11 for c in dec)
    res = _convs(gan.g2.resnet, nn.Conv3d)
    assert len(res) == 14 and all(c.kernel_size == (3, 3, 3) and c.padding == (1, 1, 1) for c in res)
    d2 = _convs(gan.d2, nn.Conv3d)
    assert len(d2) == 6 and all(c.kernel_size == (5, 5, 5) and c.stride == (2, 2, 2) and c.padding == (2, 2, 2) for c in d2)


def test_eleven_encoders_and_decoders_are_independent(gan: MIGAN) -> None:
    g2 = MIGAN(MIGANConfig(**TINY), seed=1).g2.eval()
    base = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        v0 = g2.encode(base)
        s0 = g2.decode(v0)
        w = g2.encoders.net[0].weight  # (11 * w, 3, 6, 6): group k = encoder k
        per = w.shape[0] // 11
        w[4 * per:5 * per] += 0.5  # change encoder 4 only
        v1 = g2.encode(base)
        changed = (v1 - v0).abs().flatten(3).amax(dim=(0, 1, 3))
        assert changed[4] > 0 and torch.all(changed[torch.arange(11) != 4] == 0)
        d = g2.decoders.net[0].weight  # (11 * latent, 4w / 11 ... ) grouped transposed conv
        d[7 * 3:8 * 3] += 0.5  # decoder 7's input channels
        s1 = g2.decode(v0)
        diff = (s1 - s0).abs().flatten(3).amax(dim=(0, 1, 3))
        assert diff[7] > 0 and torch.all(diff[torch.arange(11) != 7] == 0)


def test_options_and_validation() -> None:
    cfg = MIGANConfig(image_size=32, resnet_channels=16, **TINY)
    g = MIGAN(cfg)
    v = torch.randn(2, 3, 11, 4, 4)
    assert g.g2.resnet(v).shape == v.shape
    assert g.g1(torch.randn(2, 100)).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="image_size must be 4"):
        MIGANConfig(image_size=48)
    with pytest.raises(ValueError, match="odd"):
        MIGANConfig(planes=10)
    with pytest.raises(ValueError, match="critic_norm"):
        MIGANConfig(critic_norm="spectral")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no option"):
        generators.create_stack("mi-gan", ngf=3)
    with pytest.raises(ValueError, match=r"noise of shape \(N, 100\)"):
        g.g1(torch.randn(2, 50))


def _literal_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Eq. 2-3 / 5-6 one sample at a time: (||grad D(eps r + (1 - eps) f)||_2 - 1)^2, averaged."""
    terms = []
    for i in range(real.shape[0]):
        x = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x).sum(), x)
        terms.append((torch.sqrt((g ** 2).sum()) - 1) ** 2)
    return torch.stack(terms).mean()


@pytest.mark.parametrize("dims", [2, 3])
def test_gradient_penalty_matches_literal_per_sample_computation(dims: int) -> None:
    cfg = MIGANConfig(image_size=16, critic_norm="layer", **TINY)  # layer norm: samples scored independently
    torch.manual_seed(0)
    critic = BaseCritic(cfg) if dims == 2 else StackCritic(cfg)
    shape = (5, 3, 16, 16) if dims == 2 else (5, 3, 11, 16, 16)
    real, fake = torch.randn(shape), torch.randn(shape)
    gp = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(7))
    eps = torch.rand(5, generator=torch.Generator().manual_seed(7))
    ref = _literal_penalty(critic, real, fake, eps)
    torch.testing.assert_close(gp, ref, rtol=1e-5, atol=1e-6)
    assert gp.item() > 0
    gp.backward()  # differentiable w.r.t. the critic's weights (double backward)
    weights = [m.weight for m in critic.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)  # (biases do not enter a gradient)
    with pytest.raises(ValueError, match="differ"):
        gradient_penalty(critic, real, fake[:2])


def test_gradient_penalty_of_a_linear_critic_is_exact() -> None:
    w = torch.tensor([3.0, 4.0])  # ||grad|| = 5 everywhere: penalty (5 - 1)^2 = 16
    gp = gradient_penalty(lambda x: x @ w, torch.randn(4, 2), torch.randn(4, 2))
    assert abs(gp.item() - 16.0) < 1e-5


def test_sample_is_deterministic_batch_independent_and_uint8() -> None:
    g = generators.create_stack("mi-gan", image_size=32, **TINY)
    torch.manual_seed(0)  # PyTorch's default init: DCGAN's N(0, 0.02) gives a near-uniform grey before training
    for m in g.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Conv3d)):
            m.reset_parameters()
    with torch.no_grad():  # batch-norm running statistics of a network that has seen data
        for _ in range(5):
            g.g2(g.g1(torch.randn(8, 100)))
    g.eval()
    assert g.name == "mi-gan" and "mi-gan" in generators.available_stacks() and "mi-gan" not in generators.available()
    a = g.sample(4, seed=3)
    assert a.shape == (4, 11, 32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, g.sample(4, seed=3))
    # eval mode: a stack ignores its batch (up to float rounding of another batch size: 1 grey level)
    for other in (g.sample(2, seed=3), g.sample(4, seed=3, batch_size=3)[:2]):
        assert np.abs(a[:2].astype(int) - other.astype(int)).max() <= 1
    assert not np.array_equal(a, g.sample(4, seed=4))
    assert g.sample_base(2, seed=3).shape == (2, 32, 32, 3)
