"""MI-GAN (Morooka et al., PSIVT 2019): multi-focus cell image synthesis with two generators.

``G1`` (base image generator) maps 100-d noise to the in-focus base image ``I0``; ``G2``
(multi-focus generator) maps ``I0`` to the 11 planes ``I-5 .. I+5``. Each is trained
independently against its own critic with the WGAN-GP loss (``D1`` on images, ``D2`` on stacks
as 3D volumes). Sampling chains them: ``z -> G1 -> I0 -> G2 -> stack``.

What the paper fixes and what gbench chooses (every choice is a :class:`MIGANConfig` field):

==========================  ================================================================
Paper (Sec. 2)              gbench
==========================  ================================================================
G1: 100-d noise, four       ``z`` (100) is projected to ``(8 w, 4, 4)`` by a 4x4 transposed
up-sampling convs, k 6,     convolution (DCGAN's "project and reshape", BN + ReLU); four
stride 2, padding 2, BN +   transposed convs k 6 s 2 p 2 double the side each
ReLU, 64x64 output          (``(in - 1) 2 - 4 + 6 = 2 in``: 4 -> 8 -> 16 -> 32 -> 64) with
                            widths ``8w -> 4w -> 2w -> w -> 3``; BN + ReLU after each but the
                            last, which ends in tanh (DCGAN). ``w = g1_width`` (64 = DCGAN).
D1: six convs, k 5          six convs k 5 s 2 p 2 (64 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1), widths
                            ``w, 2w, 4w, 8w, 8w, 1``, LeakyReLU 0.2, ``critic_norm`` after
                            layers 2-5 (DCGAN leaves the first unnormalised); the score is
                            the mean of the last map. ``w = d1_width``.
G2 encoders: 11 x four      eleven independent encoders (no shared weights; run as one
down-sampling convs, k 6,   grouped network, groups = 11, for speed), each ``I0 ->
s 2, p 2, BN + ReLU ->      w -> 2w -> 4w -> 3`` at sides 32, 16, 8, 4 (``(in + 4 - 6) / 2 + 1
3x4x4                       = in / 2``), BN + ReLU after each; ``w = g2_width``,
                            ``latent_channels`` = 3 (the paper's 3x4x4).
stacked to 11x3x4x4         a volume ``(N, 3, 11, 4, 4)``: channels 3, depth 11 (focus), 4x4.
3D ResNet, seven layers of  seven residual blocks ``x + BN(conv(LReLU(BN(conv(x)))))``, conv
two 3x3x3 convs, pad 1,     3x3x3 pad 1, LeakyReLU 0.2. ``resnet_channels`` (default 3 = the
BN + LeakyReLU then BN      paper's literal reading: the ResNet works on the 3-channel
                            volume); a larger value wraps it in 1x1x1 convs 3 -> C -> 3.
G2 decoders: 11 x four      eleven independent decoders ``3 -> 4w -> 2w -> w -> 3``, BN +
up-sampling convs           ReLU after each but the last (tanh), one per plane.
D2: six 3D convs, k 5,      six Conv3d k 5 s 2 p 2 on ``(N, 3, 11, 64, 64)`` (depth
s 2, p 2, BN + ReLU         11 -> 6 -> 3 -> 2 -> 1 -> 1 -> 1, side 64 -> ... -> 1), widths
                            ``w, 2w, 4w, 8w, 8w, 1``, ``critic_norm`` + ReLU after each of the
                            first five; ``w = d2_width``.
WGAN-GP, lambda 10          :func:`gradient_penalty`, ``gp_lambda`` = 10.
(not given)                 WGAN-GP's own schedule: Adam ``lr`` 1e-4, betas (0, 0.9),
                            ``n_critic`` = 5 critic updates per generator update.
==========================  ================================================================

``critic_norm`` defaults to ``batch`` (the paper's BN in D2). Gulrajani et al. advise against
batch norm in a WGAN-GP critic, because it makes each sample's score depend on the batch;
``layer`` (GroupNorm with one group) or ``none`` are the alternatives; the ``smoke`` and ``demo``
profiles use ``layer`` (``Profile.migan.critic_norm``), ``paper`` the paper's ``batch``. Real and
fake images go through the critic in one batch so that batch norm sees both.

Why the literal reading fails, and the options that fix it
----------------------------------------------------------

Measured on ``synthetic-cells:siha`` (64 training stacks, demo widths, one CPU thread; issue 16):
G1 alone learns (after 100 steps its 32 samples have a per-pixel std of 8.1 grey levels against
11.1 for real base images: no collapse), but the literal G2 does not. After 60 G2 steps, fed the
*real* I0 of 16 test cells, its stacks were the same for every input (per-pixel std across cells
1.4 against 8.9 real), I0 came back with a mean error of 79 grey levels, the inter-plane SSIM was
0.12 (real 0.94), every plane had its own colour cast (mean colours 136 to 161 per plane and
channel, real 202 to 239) and the sharpness was flat and a hundred times the real one
(checkerboard). The causes:

- **the 3x4x4 bottleneck**: 48 numbers per plane cannot carry a 64x64 cell; the decoders learn
  one stack that fools the critic on average and ignore I0 (a conditional generator with no
  noise and no reconstruction term has no reason to depend on its input);
- **eleven independent decoders**: nothing ties plane ``k`` to plane ``k + 1``, so colours and
  shapes drift between planes (the paper's own Fig. 5 notes "unnatural change of the cell nuclear
  shape between successive images");
- **transposed convolutions** k 6 s 2 leave a checkerboard on every plane at this training length
  (Odena et al. 2016); it is also what the focus measure (variance of the Laplacian) sees.

The options (each a :class:`MIGANConfig` field; ``paper`` keeps the literal architecture,
``smoke`` and ``demo`` use the fixes: ``Profile.migan.options``):

=====================================  =========================================================
Paper's wording                        Option (``demo`` value)
=====================================  =========================================================
"four up-sampling convolution layers   ``upsample`` = ``transposed`` (paper), ``resize``
... kernel size 6x6 ... stride and     (nearest x2 + conv k ``resize_kernel`` = 3; demo) or
padding sizes are 2"                   ``bilinear``: resize-convolution, no checkerboard
"The encoder part includes 11          ``g2_arch`` = ``paper`` or ``focus``
networks ... The size of the input     (:class:`FocusStructuredGenerator`: one shared encoder,
matrix is 11x3x4x4"; "each 2D feature  ``latent_channels`` = 32 bottleneck, plane embedding, the
map is inputted to the corresponding   paper's 3D ResNet (``resnet_channels`` = 32), decoding
2D-decoder"                            by a learnt PSF per plane applied to I0, camera noise)
"trained by the 3D version of the      ``g2_l1`` = 0 (paper) or a paired L1 term
WGAN-GP loss" (Eq. 4: adversarial      ``|G2(I0) - stack|`` (100, pix2pix's weight; demo): G2
only)                                  is trained on real (I0, stack) pairs, so it can be told
                                       what the stack of *this* I0 looks like
(not given)                            ``n_critic`` 5 (WGAN-GP's) for G1, ``g2_n_critic`` = 2
                                       for G2 (demo; the L1 term carries most of G2's signal)
(not given)                            widths (demo 16/16/16/8 for G1/D1/G2/D2), ``lr`` 2e-4,
                                       ``g2_lr`` 1e-3 (G2's PSF table must travel in ~100 steps)
(not given; WGAN-GP: constant lr)      ``lr_decay`` 0 (paper); demo 0.5: linear to 0 over the
                                       second half of each phase (pix2pix's schedule; the last
                                       iterate of a short WGAN run oscillates: KID of the demo
                                       at seeds 0-2 0.21/0.24/1.42 without, 0.02-0.08 with)
(not given)                            ``precise_bn``: exact batch-norm statistics after each
                                       phase (sampling runs in eval mode on them)
=====================================  =========================================================

Other image sides ``4 * 2**k`` work as well (``k`` = number of up/down-sampling layers; the
paper's 64 gives four); the ``smoke`` profile uses 32 to stay fast.

References:
    K. Morooka, X. Zhang, S. Miyauchi, R. Kurazume, E. Ohno. GAN-Based Method for
    Synthesizing Multi-focus Cell Images. PSIVT 2019 Workshops, LNCS 11994, pp. 100-107.
    I. Gulrajani et al. Improved Training of Wasserstein GANs. NeurIPS 2017.
    A. Radford et al. Unsupervised Representation Learning with DCGANs. ICLR 2016.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from gbench.core.errors import DataError
from gbench.core.fileio import save_torch
from gbench.core.profiles import Profile
from gbench.engine import plain_state, safe_torch_load
from gbench.generators.base import StackGenerator

__all__ = [
    "MIGANConfig", "BaseGenerator", "BaseCritic", "FocusEncoders", "FocusDecoders", "ResNet3d",
    "MultiFocusGenerator", "StackCritic", "MIGAN", "WGANGPModule", "gradient_penalty",
    "wasserstein_estimate", "stacks_to_tensor", "tensor_to_stacks", "images_to_tensor",
    "tensor_to_images", "config_for_profile", "GaussianBank",
    "FocusStructuredGenerator", "precise_batch_norm", "parameter_count", "load_mi_gan", "save_mi_gan",
    "MODEL_FILE", "create",
]

CriticNorm = Literal["batch", "layer", "instance", "none"]
Upsample = Literal["transposed", "resize", "bilinear"]
G2Arch = Literal["paper", "focus"]
#: Widths (pixels at a 64-pixel plane) of the Gaussian blur bank of the ``focus`` G2.
PSF_SIGMAS: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.25, 3.25, 4.75, 7.0, 10.0)


@dataclass(frozen=True)
class MIGANConfig:
    """Architecture and optimisation settings of MI-GAN (see the module docstring).

    Attributes:
        image_size: plane side (paper: 64); ``4 * 2**k`` with ``k >= 1``.
        planes: focus planes (paper: 11); odd.
        z_dim: noise dimension of G1 (paper: 100).
        g1_width: G1 base width ``w`` (widths 8w, 4w, 2w, w).
        d1_width: D1 base width (w, 2w, 4w, 8w, 8w).
        g2_width: G2 encoder/decoder base width (w, 2w, 4w).
        latent_channels: channels of each encoder's output (paper: 3, i.e. 3x4x4).
        resnet_channels: channels inside the 3D ResNet (3 = paper's literal reading).
        resnet_blocks: residual layers of the 3D ResNet (paper: 7).
        d2_width: D2 base width (w, 2w, 4w, 8w, 8w).
        critic_norm: normalisation in D1 and D2 (``batch`` = paper's BN).
        gp_lambda: gradient-penalty weight lambda_1 = lambda_2 (paper: 10).
        n_critic: critic updates per generator update.
        lr: Adam learning rate of all four networks.
        betas: Adam betas.
        leaky_slope: LeakyReLU slope (3D ResNet, D1).
        upsample: ``transposed`` (paper: transposed convs k 6 s 2 p 2), ``resize``
            (nearest-neighbour x2, then a conv of ``resize_kernel``: no checkerboard) or
            ``bilinear`` (bilinear x2, then the conv: smoother still) in G1 and G2's decoders.
        resize_kernel: kernel of the conv after each resize (odd; 3).
        g2_arch: ``paper`` (eleven encoders to 3x4x4, 3D ResNet, eleven decoders) or ``focus``
            (the focus-structured G2 of :class:`FocusStructuredGenerator`).
        g2_l1: weight of a paired L1 term ``|G2(I0) - stack|`` in G2's loss (paper: 0, Eq. 4
            is adversarial only).
        psf_sigmas: Gaussian widths (pixels at 64 px) of the ``focus`` G2's blur bank.
        g2_residual: the ``focus`` G2 adds a decoded residual image to each blurred plane.
        g2_n_critic: critic updates per generator update in the G2 phase (None: ``n_critic``).
        g2_lr: Adam learning rate of G2 and D2 (None: ``lr``).
        precise_bn: after each phase, replace the generator's batch-norm running statistics by
            the exact statistics of a fixed set of inputs (noise for G1, the training I0 for
            G2; "precise BN", Wu & Johnson 2021): the running averages of a few hundred small
            batches are noisy, and sampling runs in eval mode on them.
        lr_decay: share of each phase at its end over which the learning rates fall linearly
            to 0 (0: constant, the paper and WGAN-GP; pix2pix decays over the second half, 0.5).
    """

    image_size: int = 64
    planes: int = 11
    z_dim: int = 100
    g1_width: int = 64
    d1_width: int = 64
    g2_width: int = 32
    latent_channels: int = 3
    resnet_channels: int = 3
    resnet_blocks: int = 7
    d2_width: int = 16
    critic_norm: CriticNorm = "batch"
    gp_lambda: float = 10.0
    n_critic: int = 5
    lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.9)
    leaky_slope: float = 0.2
    upsample: Upsample = "transposed"
    resize_kernel: int = 3
    g2_arch: G2Arch = "paper"
    g2_l1: float = 0.0
    psf_sigmas: tuple[float, ...] = PSF_SIGMAS
    g2_residual: bool = True
    g2_n_critic: int | None = None
    g2_lr: float | None = None
    precise_bn: bool = False
    lr_decay: float = 0.0

    def __post_init__(self) -> None:
        k = math.log2(self.image_size / 4) if self.image_size > 0 else -1
        if k < 1 or k != int(k):
            raise ValueError(f"MI-GAN image_size must be 4 * 2**k (8, 16, 32, 64, 128, ...), got {self.image_size}")
        if self.planes < 1 or self.planes % 2 != 1:
            raise ValueError(f"MI-GAN planes must be a positive odd number (I0 in the middle), got {self.planes}")
        for name in ("z_dim", "g1_width", "d1_width", "g2_width", "latent_channels", "resnet_channels",
                     "d2_width", "n_critic"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MI-GAN {name} must be positive, got {getattr(self, name)}")
        if self.resnet_blocks < 0:
            raise ValueError(f"MI-GAN resnet_blocks must be >= 0, got {self.resnet_blocks}")
        if self.critic_norm not in ("batch", "layer", "instance", "none"):
            raise ValueError(f"MI-GAN critic_norm must be batch, layer, instance or none, got {self.critic_norm!r}")
        if self.gp_lambda < 0 or self.lr <= 0:
            raise ValueError("MI-GAN gp_lambda must be >= 0 and lr > 0")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.upsample not in ("transposed", "resize", "bilinear"):
            raise ValueError(f"MI-GAN upsample must be transposed (paper), resize or bilinear, got {self.upsample!r}")
        if self.resize_kernel < 1 or self.resize_kernel % 2 != 1:
            raise ValueError(f"MI-GAN resize_kernel must be a positive odd number, got {self.resize_kernel}")
        if self.g2_arch not in ("paper", "focus"):
            raise ValueError(f"MI-GAN g2_arch must be paper or focus, got {self.g2_arch!r}")
        if self.g2_n_critic is not None and self.g2_n_critic <= 0:
            raise ValueError(f"MI-GAN g2_n_critic must be positive, got {self.g2_n_critic}")
        if not 0.0 <= self.lr_decay <= 1.0:
            raise ValueError(f"MI-GAN lr_decay must lie in [0, 1], got {self.lr_decay}")
        if self.g2_lr is not None and self.g2_lr <= 0:
            raise ValueError(f"MI-GAN g2_lr must be positive, got {self.g2_lr}")
        if self.g2_l1 < 0:
            raise ValueError(f"MI-GAN g2_l1 must be >= 0, got {self.g2_l1}")
        sig = tuple(float(x) for x in self.psf_sigmas)
        if not sig or any(x < 0 for x in sig):
            raise ValueError(f"MI-GAN psf_sigmas must be non-negative widths (pixels at 64 px), got {self.psf_sigmas}")
        object.__setattr__(self, "psf_sigmas", sig)

    @property
    def n_sampling(self) -> int:
        """Up/down-sampling layers between 4x4 and ``image_size`` (paper: 4)."""
        return int(round(math.log2(self.image_size / 4)))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["psf_sigmas"] = list(self.psf_sigmas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MIGANConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(d) - names)
        if bad:
            raise ValueError(f"MIGANConfig has no option(s) {', '.join(bad)} (known: {', '.join(sorted(names))})")
        d = dict(d)
        for key in ("betas", "psf_sigmas"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


def config_for_profile(profile: Profile, **overrides: Any) -> MIGANConfig:
    """The MI-GAN config of a profile's ``migan`` section (:class:`gbench.core.profiles.MiganSection`:
    image size, planes, lr, widths, critic norm and further options), plus ``overrides``."""

    base = profile.migan.config_options()
    base.update(overrides)
    return MIGANConfig.from_dict(base)


# ------------------------------------------------------------------------------------- building blocks


def _norm2d(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "layer":
        return nn.GroupNorm(1, ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    return nn.Identity()


def _norm3d(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(ch)
    if kind == "layer":
        return nn.GroupNorm(1, ch)
    if kind == "instance":
        return nn.InstanceNorm3d(ch, affine=True)
    return nn.Identity()


def _up(cin: int, cout: int, last: bool, mode: str = "transposed", kernel: int = 3, groups: int = 1) -> list[nn.Module]:
    """One up-sampling layer (doubles the side), BN + ReLU, or tanh when ``last``.

    ``transposed``: transposed conv k 6 s 2 p 2 (the paper). ``resize``: nearest-neighbour
    up-sampling x2, then a conv k ``kernel`` (stride 1, same padding): every output pixel gets
    the same number of kernel taps, so no checkerboard (Odena et al. 2016).
    """
    if mode in ("resize", "bilinear"):
        conv: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest" if mode == "resize" else "bilinear"),
                                 nn.Conv2d(cin, cout, kernel, 1, kernel // 2, groups=groups, bias=last)]
    else:
        conv = [nn.ConvTranspose2d(cin, cout, 6, 2, 2, groups=groups, bias=last)]
    return conv + ([nn.Tanh()] if last else [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)])


def _down(cin: int, cout: int) -> list[nn.Module]:
    """Conv k 6 s 2 p 2 (halves the side), BN + ReLU."""
    return [nn.Conv2d(cin, cout, 6, 2, 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _widths(w: int, n: int) -> list[int]:
    """Widths from the 4x4 end outwards: ``[8w, 4w, 2w, w]`` for n = 4 (capped at 8w)."""
    return [w * 2 ** min(n - 1 - i, 3) for i in range(n)]


def _init_dcgan(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), norm weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)):
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * 0.02)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.InstanceNorm2d, nn.InstanceNorm3d)):
            if getattr(m, "weight", None) is not None:
                with torch.no_grad():
                    m.weight.copy_(1.0 + torch.randn(m.weight.shape, generator=generator) * 0.02)
                    m.bias.zero_()


# ------------------------------------------------------------------------------------------- G1 / D1


class BaseGenerator(nn.Module):
    """G1: noise ``(N, z_dim)`` -> base image ``(N, 3, S, S)`` in [-1, 1] (tanh)."""

    def __init__(self, cfg: MIGANConfig) -> None:
        super().__init__()
        self.z_dim = cfg.z_dim
        ws = _widths(cfg.g1_width, cfg.n_sampling)
        self.project = nn.Sequential(nn.ConvTranspose2d(cfg.z_dim, ws[0], 4, 1, 0, bias=False),
                                     nn.BatchNorm2d(ws[0]), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for i, cin in enumerate(ws):
            last = i == len(ws) - 1
            layers += _up(cin, 3 if last else ws[i + 1], last, cfg.upsample, cfg.resize_kernel)
        self.up = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"G1 expects noise of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        return self.up(self.project(z[:, :, None, None]))


class BaseCritic(nn.Module):
    """D1: image ``(N, 3, S, S)`` -> score ``(N,)``; six convs k 5 s 2 p 2."""

    def __init__(self, cfg: MIGANConfig) -> None:
        super().__init__()
        w = cfg.d1_width
        ws = [w, 2 * w, 4 * w, 8 * w, 8 * w]
        layers: list[nn.Module] = []
        cin = 3
        for i, cout in enumerate(ws):
            layers.append(nn.Conv2d(cin, cout, 5, 2, 2, bias=(i == 0 or cfg.critic_norm == "none")))
            if i > 0:
                layers.append(_norm2d(cfg.critic_norm, cout))
            layers.append(nn.LeakyReLU(cfg.leaky_slope, inplace=True))
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 5, 2, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image).flatten(1).mean(1)


# ------------------------------------------------------------------------------------------- G2 / D2


class FocusEncoders(nn.Module):
    """G2's eleven 2D encoders: ``I0 (N, 3, S, S)`` -> volume ``(N, latent, planes, 4, 4)``.

    Encoder ``k`` (four convs k 6 s 2 p 2, BN + ReLU after each: ``3 -> w -> 2w -> 4w ->
    latent``) produces plane ``k`` of the volume. The eleven encoders share no weights; they
    run as one grouped network (``groups = planes``: group ``k`` of every layer is encoder
    ``k``, and batch norm is per channel, hence per encoder), which is the same function as
    eleven separate networks with 1/11 of the kernel launches.
    """

    def __init__(self, cfg: MIGANConfig) -> None:
        super().__init__()
        p = self.planes = cfg.planes
        self.latent = cfg.latent_channels
        ws = _widths(cfg.g2_width, cfg.n_sampling - 1)[::-1] if cfg.n_sampling > 1 else []
        chans = [3, *ws, cfg.latent_channels]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(p * cin, p * cout, 6, 2, 2, groups=p, bias=False), nn.BatchNorm2d(p * cout),
                       nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)

    def forward(self, base: Tensor) -> Tensor:
        n = base.shape[0]
        y = self.net(base.repeat(1, self.planes, 1, 1))  # (N, P * latent, 4, 4), plane-major channels
        return y.view(n, self.planes, self.latent, *y.shape[2:]).transpose(1, 2)


class FocusDecoders(nn.Module):
    """G2's eleven 2D decoders: volume ``(N, latent, planes, 4, 4)`` -> stack ``(N, 3, planes, S, S)``.

    Decoder ``k`` (four transposed convs k 6 s 2 p 2: ``latent -> 4w -> 2w -> w -> 3``, BN +
    ReLU after each but the last, tanh) turns plane ``k`` of the volume into focus plane ``k``.
    Grouped like :class:`FocusEncoders` (no weights shared between planes).
    """

    def __init__(self, cfg: MIGANConfig) -> None:
        super().__init__()
        p = self.planes = cfg.planes
        self.latent = cfg.latent_channels
        ws = _widths(cfg.g2_width, cfg.n_sampling - 1) if cfg.n_sampling > 1 else []
        chans = [cfg.latent_channels, *ws, 3]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:])):
            last = i == len(chans) - 2
            layers += _up(p * cin, p * cout, last, cfg.upsample, cfg.resize_kernel, groups=p)
        self.net = nn.Sequential(*layers)

    def forward(self, volume: Tensor) -> Tensor:
        n, c, p = volume.shape[:3]
        if c != self.latent or p != self.planes:
            raise ValueError(f"decoders expect a volume (N, {self.latent}, {self.planes}, h, w), got {tuple(volume.shape)}")
        x = volume.transpose(1, 2).reshape(n, p * c, *volume.shape[3:])
        y = self.net(x)
        return y.view(n, p, 3, *y.shape[2:]).transpose(1, 2)


class _ResBlock3d(nn.Module):
    def __init__(self, ch: int, slope: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm3d(ch), nn.LeakyReLU(slope, inplace=True),
            nn.Conv3d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm3d(ch),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNet3d(nn.Module):
    """G2's feature-map generator: residual 3D convs on ``(N, C, planes, 4, 4)``; shape preserved."""

    def __init__(self, cfg: MIGANConfig) -> None:
        super().__init__()
        c, r = cfg.latent_channels, cfg.resnet_channels
        self.lift = nn.Identity() if r == c else nn.Conv3d(c, r, 1)
        self.blocks = nn.Sequential(*[_ResBlock3d(r, cfg.leaky_slope) for _ in range(cfg.resnet_blocks)])
        self.drop = nn.Identity() if r == c else nn.Conv3d(r, c, 1)

    def forward(self, volume: Tensor) -> Tensor:
        return self.drop(self.blocks(self.lift(volume)))


class MultiFocusGenerator(nn.Module):
    """G2: base image ``(N, 3, S, S)`` -> stack ``(N, 3, planes, S, S)`` in [-1, 1]."""

    def __init__(self, cfg: MIGANConfig) -> None:
        super().__init__()
        self.planes = cfg.planes
        self.encoders = FocusEncoders(cfg)
        self.resnet = ResNet3d(cfg)
        self.decoders = FocusDecoders(cfg)

    def encode(self, base: Tensor) -> Tensor:
        """The eleven encodings stacked as a volume ``(N, latent, planes, 4, 4)``."""
        return self.encoders(base)

    def decode(self, volume: Tensor) -> Tensor:
        """Split a volume into planes and decode each: ``(N, 3, planes, S, S)``."""
        return self.decoders(volume)

    def forward(self, base: Tensor) -> Tensor:
        return self.decode(self.resnet(self.encode(base)))


class GaussianBank(nn.Module):
    """A fixed bank of Gaussian blurs: ``(N, C, S, S)`` -> ``(N, J, C, S, S)``, one blur per width.

    Widths are given in pixels at a 64-pixel plane and scaled with the side (``size / 64``);
    width 0 is the identity. Separable, edge-replicating (``mode="nearest"`` of scipy),
    truncated at ``ceil(4 sigma)``. Each 1D blur is an ``S x S`` matrix with the edge folded in,
    so a plane's blur is ``K X K^T`` (two matrix products: far faster on a CPU than a 61-tap
    convolution).
    """

    def __init__(self, sigmas: Sequence[float], size: int) -> None:
        super().__init__()
        scale = size / 64.0
        mats = []
        idx = torch.arange(size)
        for s in (float(x) * scale for x in sigmas):
            m = torch.zeros(size, size, dtype=torch.float64)
            if s < 1e-3:
                m = torch.eye(size, dtype=torch.float64)
            else:
                r = max(1, int(math.ceil(4 * s)))
                t = torch.arange(-r, r + 1, dtype=torch.float64)
                k = torch.exp(-0.5 * (t / s) ** 2)
                k = k / k.sum()
                for j, w in zip(range(-r, r + 1), k):
                    m[idx, (idx + j).clamp(0, size - 1)] += w
            mats.append(m)
        self.register_buffer("mats", torch.stack(mats).float(), persistent=False)  # (J, S, S)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        k = self.mats
        y = torch.matmul(torch.matmul(k, x.reshape(n * c, 1, h, w)), k.transpose(1, 2))  # (N C, J, H, W)
        return y.view(n, c, k.shape[0], h, w).transpose(1, 2)


class FocusStructuredGenerator(nn.Module):
    """G2, focus-structured (``g2_arch="focus"``): each plane is I0 seen through a learned PSF.

    The paper's pipeline ``encoders -> volume -> 3D ResNet -> decoders`` is kept, with four
    changes (each aimed at a failure of the literal reading: see ``docs`` in the README):

    1. **one shared encoder** (the paper's four down-sampling convs k 6 s 2 p 2, BN + ReLU)
       maps I0 to ``latent_channels`` x 4 x 4 (a wider bottleneck than the paper's 3x4x4,
       which cannot carry a 64x64 cell); the volume repeats that encoding over the planes and
       adds a per-plane embedding (initialised to the signed and absolute plane offset
       ``k / 5``, ``|k| / 5`` in its first two channels, learnt);
    2. the 3D ResNet (the paper's seven residual layers, ``resnet_channels`` wide) mixes
       neighbouring planes as in the paper;
    3. **focus-structured decoding**: a head shared by the planes reads each plane's pooled
       features and gives the weights ``a_kj`` of a fixed Gaussian blur bank
       (:class:`GaussianBank`, ``psf_sigmas``) and three colour gains ``g_kc``; plane ``k`` is
       ``g_k * sum_j a_kj G_sigma_j * I0`` on the intensity scale [0, 1]. Signed weights make
       difference-of-Gaussian PSFs (defocus halos) possible; any smooth radially symmetric
       PSF is near such a mixture;
    4. optionally (``g2_residual``) a decoder shared by the planes (resize-conv up-sampling,
       ``g2_width``) adds a residual image per plane, scaled by a learnt per-plane factor that
       starts at 0, for changes a PSF cannot make; and a per-plane learnt noise level adds
       camera noise (starting at 0.005).

    At initialisation the PSF weights are the identity (``a_k0 = 1``): every plane is I0, so
    G2 starts from a consistent stack and learns the defocus. Parameters that must travel far
    in a few hundred Adam steps (PSF weights, noise level) are scaled at run time
    (:data:`PSF_GAIN`, :data:`NOISE_GAIN`, like the equalised learning rate of Karras et al.).
    """

    def __init__(self, cfg: MIGANConfig) -> None:
        super().__init__()
        p = self.planes = cfg.planes
        c = self.latent = cfg.latent_channels
        self.size = cfg.image_size
        ws = _widths(cfg.g2_width, cfg.n_sampling - 1)[::-1] if cfg.n_sampling > 1 else []
        chans = [3, *ws, c]
        enc: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            enc += [nn.Conv2d(cin, cout, 6, 2, 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*enc)
        half = max(p // 2, 1)
        embed = torch.zeros(c, p)
        offsets = torch.arange(p, dtype=torch.float32) - p // 2
        embed[0] = offsets / half
        if c > 1:
            embed[1] = offsets.abs() / half
        self.plane_embed = nn.Parameter(embed)
        self.resnet = ResNet3d(cfg)
        self.n_psf = len(cfg.psf_sigmas)
        self.blur = GaussianBank(cfg.psf_sigmas, cfg.image_size)
        self.head = nn.Linear(c, 2 * self.n_psf + 3)
        self.psf_table = nn.Parameter(torch.zeros(p, 2 * self.n_psf + 3))
        self.residual: nn.Module | None = None
        if cfg.g2_residual:
            dws = _widths(cfg.g2_width, cfg.n_sampling - 1) if cfg.n_sampling > 1 else []
            dch = [c, *dws, 3]
            dec: list[nn.Module] = []
            for i, (cin, cout) in enumerate(zip(dch[:-1], dch[1:])):
                dec += _up(cin, cout, i == len(dch) - 2, "resize", cfg.resize_kernel)
            self.residual = nn.Sequential(*dec)
            self.residual_scale = nn.Parameter(torch.zeros(p))
        self.noise_level = nn.Parameter(torch.full((p,), math.log(NOISE_INIT) / NOISE_GAIN))

    def reset_head(self) -> None:
        """Zero the head (PSF = identity at the start); called after the DCGAN initialisation."""
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.zero_()

    def psf_weights(self, base: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(a, gains, volume)``: blur-bank weights ``(N, P, J)``, colour gains ``(N, P, 3)``, the 3D ResNet output."""
        e = self.encoder(base)  # (N, C, 4, 4)
        v = self.resnet(e[:, :, None] + self.plane_embed[None, :, :, None, None])  # (N, C, P, 4, 4)
        h = HEAD_GAIN * self.head(v.mean(dim=(3, 4)).transpose(1, 2)) + PSF_GAIN * self.psf_table  # (N, P, 2 J + 3)
        j = self.n_psf
        logits = h[..., :j].clone()
        logits[..., 0] = logits[..., 0] + IDENTITY_LOGIT  # (nearly) the identity at initialisation
        detail = h[..., j:2 * j]
        a = torch.softmax(logits, dim=-1) + detail - detail.mean(dim=-1, keepdim=True)  # sum 1: brightness kept
        return a, torch.exp(GAIN_SCALE * h[..., 2 * j:]), v

    def forward(self, base: Tensor, noise: Tensor | None = None, return_clean: bool = False) -> Any:
        """The stack ``(N, 3, P, S, S)``; with ``return_clean`` also the stack before the noise."""
        n = base.shape[0]
        a, gains, v = self.psf_weights(base)
        bank = self.blur((base + 1.0) / 2.0)  # (N, J, 3, S, S), intensity scale
        planes = torch.einsum("npj,njchw->ncphw", a, bank) * gains.transpose(1, 2)[..., None, None]
        out = planes * 2.0 - 1.0  # (N, 3, P, S, S)
        if self.residual is not None:
            c, p = v.shape[1], v.shape[2]
            r = self.residual(v.transpose(1, 2).reshape(n * p, c, *v.shape[3:]))
            r = r.view(n, p, 3, *r.shape[2:]).transpose(1, 2)
            out = out + self.residual_scale.view(1, 1, p, 1, 1) * r
        if noise is None:
            noise = torch.randn_like(out)
        noisy = out + torch.exp(NOISE_GAIN * self.noise_level).view(1, 1, -1, 1, 1) * noise
        return (noisy, out) if return_clean else noisy


#: Run-time gains of the focus G2's PSF table and log noise level (equalised learning rate).
PSF_GAIN = 50.0
NOISE_GAIN = 10.0
#: The per-cell head only modulates the per-plane PSF table (its outputs are scaled down).
HEAD_GAIN = 0.1
#: Initial camera-noise level (std in [-1, 1] units: 0.01 = 1.3 grey levels).
NOISE_INIT = 0.01
#: Initial logit of the identity in the PSF softmax (weight ~0.98 of 9 kernels).
IDENTITY_LOGIT = 6.0
#: Colour gains are ``exp(GAIN_SCALE * h)``.
GAIN_SCALE = 0.02


class StackCritic(nn.Module):
    """D2: stack ``(N, 3, planes, S, S)`` -> score ``(N,)``; six Conv3d k 5 s 2 p 2."""

    def __init__(self, cfg: MIGANConfig) -> None:
        super().__init__()
        w = cfg.d2_width
        ws = [w, 2 * w, 4 * w, 8 * w, 8 * w]
        layers: list[nn.Module] = []
        cin = 3
        for cout in ws:
            layers += [nn.Conv3d(cin, cout, 5, 2, 2, bias=cfg.critic_norm == "none"), _norm3d(cfg.critic_norm, cout),
                       nn.ReLU(inplace=True)]
            cin = cout
        layers.append(nn.Conv3d(cin, 1, 5, 2, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, stack: Tensor) -> Tensor:
        return self.net(stack).flatten(1).mean(1)


# ----------------------------------------------------------------------------------------- precise BN


@torch.no_grad()
def precise_batch_norm(module: nn.Module, batches: Sequence[Tensor], forward: Callable[[Tensor], Any] | None = None) -> int:
    """Set every batch norm of ``module`` to the exact mean / variance of its inputs over ``batches``.

    The module runs in train mode (each batch norm normalises with its batch's statistics, as in
    training) while forward pre-hooks sum each batch norm's input and squared input per channel
    over all batches; the running mean becomes the pooled mean and the running variance the
    pooled unbiased variance. The weights do not change; the mode is restored. Returns the number
    of batch-norm layers updated.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or not batches:
        return 0
    sums: dict[nn.Module, list[Any]] = {m: [0.0, 0.0, 0] for m in norms}

    def hook(m: nn.Module, args: tuple[Tensor, ...]) -> None:
        x = args[0].double()
        dims = [d for d in range(x.ndim) if d != 1]
        acc = sums[m]
        acc[0] = acc[0] + x.sum(dim=dims)
        acc[1] = acc[1] + (x * x).sum(dim=dims)
        acc[2] += x.numel() // x.shape[1]

    handles = [m.register_forward_pre_hook(hook) for m in norms]
    was = module.training
    module.train()
    try:
        for b in batches:
            (forward or module)(b)
    finally:
        for h in handles:
            h.remove()
        module.train(was)
    for m, (s1, s2, n) in sums.items():
        if n < 2:
            continue
        mean = s1 / n
        var = (s2 / n - mean * mean).clamp_min(0) * n / (n - 1)
        m.running_mean.copy_(mean.to(m.running_mean.dtype))
        m.running_var.copy_(var.to(m.running_var.dtype))
    return len(norms)


# -------------------------------------------------------------------------------------------- WGAN-GP


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP penalty ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` (MI-GAN Eq. 2-3 and 5-6).

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per sample, drawn from
    ``generator`` (on the generator's device; the global generator when None). The gradient
    is that of ``D(x_hat).sum()``, which for a critic scoring each sample independently is the
    per-sample gradient; the norm runs over all of a sample's elements (image or volume).
    The graph is kept (``create_graph=True``) so the penalty can be back-propagated. It is computed in
    float32 with autocast off, also when the rest of the step runs under ``--amp bf16``.

    Args:
        critic: maps ``(N, ...)`` to scores ``(N,)`` (or ``(N, 1)``).
        real: real samples ``(N, ...)``.
        fake: generated samples of the same shape (usually detached).
        generator: source of ``eps``.

    Returns:
        A scalar tensor (not multiplied by lambda).

    Raises:
        ValueError: shapes differ or the batch is empty.
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    if real.shape[0] == 0:
        raise ValueError("gradient_penalty: empty batch")
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    dev = generator.device if generator is not None else real.device
    eps = torch.rand(shape, generator=generator, device=dev).to(device=real.device)
    x_hat = (eps * real.detach().float() + (1 - eps) * fake.detach().float()).requires_grad_(True)
    # float32 even under --amp bf16: the penalty is a gradient norm squared near 1, and its double backward
    # is where reduced precision would bias the Lipschitz constraint
    with torch.autocast(x_hat.device.type, enabled=False):
        score = critic(x_hat)
        (grad,) = torch.autograd.grad(score.float().sum(), x_hat, create_graph=True)
        return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


@torch.no_grad()
def wasserstein_estimate(critic: nn.Module, real: Tensor, fake: Tensor) -> float:
    """The critic's Wasserstein-1 estimate ``mean D(real) - mean D(fake)`` (critic in eval mode)."""
    was = critic.training
    critic.eval()
    try:
        return float(critic(real).mean() - critic(fake).mean())
    finally:
        critic.train(was)


class WGANGPModule(nn.Module):
    """One MI-GAN phase as an :func:`gbench.engine.fit` module: a generator against its critic.

    One engine step is one generator iteration (as in WGAN-GP's Algorithm 1): the batch holds
    ``n_critic`` real sub-batches; the critic is updated once on each (Eq. 2 / 5:
    ``D(fake) - D(real) + lambda GP``, fresh fakes each time), then the generator once (Eq. 1 /
    4: ``-D(fake)``). Build the :class:`~gbench.engine.StepLoader` with ``batch_size * n_critic``
    items per step (:func:`generators.mi_gan_train.train_phase` does).

    Logged per step: ``loss_d``, ``gp`` and ``wasserstein`` (``mean D(real) - mean D(fake)``
    before each critic update), averaged over the ``n_critic`` critic updates, and ``loss_g``.

    Args:
        generator: G1 or G2.
        critic: D1 or D2.
        cfg: the MI-GAN config (lr, betas, gp_lambda, n_critic, z_dim).
        phase: ``g1`` (batch = real base images ``(N, 3, S, S)``, fakes from noise) or ``g2``
            (batch = real stacks ``(N, 3, P, S, S)``, fakes = G2(real I0)).
    """

    def __init__(self, generator: nn.Module, critic: nn.Module, cfg: MIGANConfig, phase: Literal["g1", "g2"]) -> None:
        super().__init__()
        if phase not in ("g1", "g2"):
            raise ValueError(f"phase must be g1 or g2, got {phase!r}")
        self.generator = generator
        self.critic = critic
        self.cfg = cfg
        self.phase = phase
        lr = cfg.g2_lr if phase == "g2" and cfg.g2_lr is not None else cfg.lr
        self.base_lr = lr
        #: Generator iterations of the phase (set by the trainer; the lr decay needs it).
        self.total_steps: int | None = None
        self.optimizers = {
            "generator": torch.optim.Adam(generator.parameters(), lr=lr, betas=cfg.betas),
            "critic": torch.optim.Adam(critic.parameters(), lr=lr, betas=cfg.betas),
        }
        self.__dict__["_run"] = {"generator": generator, "critic": critic}

    def wrap_ddp(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Route training through DDP wrappers; the penalty uses the unwrapped critic (double backward)."""
        self.__dict__["_run"] = {"generator": wrap(self.generator), "critic": wrap(self.critic)}

    def fake(self, real: Tensor) -> Tensor:
        """Generated counterparts of a real batch (noise for G1, the real I0 for G2)."""
        g = self._run["generator"]
        if self.phase == "g1":
            z = torch.randn(real.shape[0], self.cfg.z_dim, device=real.device, dtype=real.dtype)
            return g(z)
        return g(real[:, :, real.shape[2] // 2])

    def _scores(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        both = self._run["critic"](torch.cat([real, fake], 0))
        return both[: real.shape[0]], both[real.shape[0]:]

    def critic_step(self, real: Tensor) -> dict[str, float]:
        """One critic update on a real batch (Eq. 2 / 5)."""
        opt_d = self.optimizers["critic"]
        with torch.no_grad():
            fake = self.fake(real)
        opt_d.zero_grad(set_to_none=True)
        d_real, d_fake = self._scores(real, fake)
        gp = gradient_penalty(self.critic, real, fake)
        loss_d = d_fake.mean() - d_real.mean() + self.cfg.gp_lambda * gp
        loss_d.backward()
        opt_d.step()
        return {"loss_d": loss_d.item(), "gp": gp.item(), "wasserstein": (d_real.mean() - d_fake.mean()).item()}

    def generator_step(self, real: Tensor) -> float:
        """One generator update (Eq. 1 / 4); ``real`` sets the batch size (and I0 for G2)."""
        opt_g = self.optimizers["generator"]
        self.critic.requires_grad_(False)
        try:
            opt_g.zero_grad(set_to_none=True)
            clean = None
            if self.phase == "g2" and self.cfg.g2_l1 > 0 and isinstance(self.generator, FocusStructuredGenerator):
                fake, clean = self._run["generator"](real[:, :, real.shape[2] // 2], return_clean=True)
            else:
                fake = self.fake(real)
            _, d_fake = self._scores(real, fake)
            loss_g = -d_fake.mean()
            if self.phase == "g2" and self.cfg.g2_l1 > 0:
                # the paired L1 compares the noise-free stack (the camera noise is left to the critic)
                l1 = ((clean if clean is not None else fake) - real).abs().mean()
                self._last_l1 = l1.item()
                loss_g = loss_g + self.cfg.g2_l1 * l1
            loss_g.backward()
            opt_g.step()
        finally:
            self.critic.requires_grad_(True)
        return loss_g.item()

    @property
    def n_critic(self) -> int:
        """Critic updates per generator update in this phase."""
        if self.phase == "g2" and self.cfg.g2_n_critic is not None:
            return int(self.cfg.g2_n_critic)
        return int(self.cfg.n_critic)

    def lr_at(self, step: int) -> float:
        """The learning rate of generator iteration ``step`` (0-based): constant, then the linear decay."""
        if self.cfg.lr_decay <= 0 or not self.total_steps:
            return self.base_lr
        start = self.total_steps * (1.0 - self.cfg.lr_decay)
        if step < start:
            return self.base_lr
        return self.base_lr * max(0.0, (self.total_steps - step) / max(self.total_steps - start, 1e-12))

    def training_step(self, batch: Tensor, step: int) -> dict[str, float]:
        if batch.device.type == "cpu" and torch.is_autocast_enabled("cpu") \
                and torch.get_autocast_dtype("cpu") == torch.bfloat16:
            # --amp bf16 on the CPU: with oneDNN on, a critic update whose bf16 scores and float32 penalty share
            # the weights gave NaN gradients at random (torch 2.14: 1-12 of 40 tries); with it off, none in 40
            was = torch.backends.mkldnn.enabled
            torch.backends.mkldnn.enabled = False
            try:
                return self._training_step(batch, step)
            finally:
                torch.backends.mkldnn.enabled = was
        return self._training_step(batch, step)

    def _training_step(self, batch: Tensor, step: int) -> dict[str, float]:
        if self.cfg.lr_decay > 0:
            lr = self.lr_at(step)
            for opt in self.optimizers.values():
                for group in opt.param_groups:
                    group["lr"] = lr
        n = self.n_critic
        if batch.shape[0] < n:
            raise ValueError(f"an MI-GAN step needs n_critic={n} sub-batches, got a batch of {batch.shape[0]}")
        chunks = batch.chunk(n)
        logs: dict[str, float] = {"loss_d": 0.0, "gp": 0.0, "wasserstein": 0.0}
        for real in chunks:
            for k, v in self.critic_step(real).items():
                logs[k] += v / len(chunks)
        logs["loss_g"] = self.generator_step(chunks[-1])
        if self.phase == "g2" and self.cfg.g2_l1 > 0:
            logs["l1"] = self._last_l1
        return logs


# ------------------------------------------------------------------------------------ tensors <-> arrays


def images_to_tensor(images: np.ndarray) -> Tensor:
    """``(N, H, W, 3)`` uint8 -> ``(N, 3, H, W)`` float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_images(t: Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` in [-1, 1] -> ``(N, H, W, 3)`` uint8."""
    x = ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def stacks_to_tensor(stacks: np.ndarray) -> Tensor:
    """``(N, P, H, W, 3)`` uint8 -> ``(N, 3, P, H, W)`` float32 in [-1, 1] (a 3D volume per cell)."""
    return torch.from_numpy(np.ascontiguousarray(stacks)).permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


def tensor_to_stacks(t: Tensor) -> np.ndarray:
    """``(N, 3, P, H, W)`` in [-1, 1] -> ``(N, P, H, W, 3)`` uint8."""
    x = ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


# -------------------------------------------------------------------------------------------- MI-GAN


class MIGAN(StackGenerator):
    """The full MI-GAN: ``g1``, ``d1`` (base image) and ``g2``, ``d2`` (multi-focus stack).

    A :class:`generators.base.StackGenerator` (registered in ``generators.STACK_GENERATORS``).

    Args:
        config: a :class:`MIGANConfig` (default: the paper's architecture, gbench's widths).
        seed: seed of the weight initialisation (DCGAN init: N(0, 0.02)).

    Example:
        >>> gan = MIGAN(MIGANConfig(image_size=32, g1_width=4, d1_width=4, g2_width=4, d2_width=2))
        >>> gan.sample(2, seed=0).shape
        (2, 11, 32, 32, 3)
    """

    name = "mi-gan"

    def __init__(self, config: MIGANConfig | None = None, seed: int = 0, **overrides: Any) -> None:
        cfg = config or MIGANConfig()
        if overrides:
            cfg = MIGANConfig.from_dict({**cfg.to_dict(), **overrides})
        super().__init__(cfg)
        self.g1 = BaseGenerator(cfg)
        self.d1 = BaseCritic(cfg)
        self.g2: nn.Module = FocusStructuredGenerator(cfg) if cfg.g2_arch == "focus" else MultiFocusGenerator(cfg)
        self.d2 = StackCritic(cfg)
        gen = torch.Generator().manual_seed(int(seed))
        for net in (self.g1, self.d1, self.g2, self.d2):
            _init_dcgan(net, gen)
        if isinstance(self.g2, FocusStructuredGenerator):
            self.g2.reset_head()

    def phase(self, which: Literal["g1", "g2"]) -> WGANGPModule:
        """The trainable :class:`WGANGPModule` of one phase (sharing this model's networks)."""
        if which == "g1":
            return WGANGPModule(self.g1, self.d1, self.config, "g1")
        if which == "g2":
            return WGANGPModule(self.g2, self.d2, self.config, "g2")
        raise ValueError(f"MI-GAN phase must be g1 or g2, got {which!r}")

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def sample_base(self, n: int, seed: int = 0, batch_size: int = 64) -> np.ndarray:
        """``n`` base images ``(n, S, S, 3)`` uint8 from G1 (noise drawn from ``seed``)."""
        return tensor_to_images(self._base(n, seed, batch_size))

    def _base(self, n: int, seed: int, batch_size: int) -> Tensor:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(n, self.config.z_dim, generator=gen)
        was = self.g1.training
        self.g1.eval()
        try:
            outs = [self.g1(z[i:i + batch_size].to(self.device)) for i in range(0, n, batch_size)]
        finally:
            self.g1.train(was)
        return torch.cat(outs) if outs else torch.empty(0, 3, self.config.image_size, self.config.image_size)

    @torch.no_grad()
    def stacks_from_base(self, base: np.ndarray | Tensor, batch_size: int = 64, seed: int = 0) -> np.ndarray:
        """G2 on base images (``(N, S, S, 3)`` uint8 or ``(N, 3, S, S)`` in [-1, 1]) -> stacks uint8.

        ``seed`` draws the camera noise of the ``focus`` G2 (the paper's G2 has none).
        """
        x = images_to_tensor(base) if isinstance(base, np.ndarray) else base
        s = self.config.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, s, s):
            raise ValueError(f"G2 expects base images of side {s}, got shape {tuple(x.shape)}")
        was = self.g2.training
        self.g2.eval()
        focus = isinstance(self.g2, FocusStructuredGenerator)
        gen = torch.Generator().manual_seed(int(seed) + 1)
        outs = []
        try:
            for i in range(0, len(x), batch_size):
                xb = x[i:i + batch_size].to(self.device)
                if focus:
                    noise = torch.randn((len(xb), 3, self.config.planes, s, s), generator=gen).to(self.device)
                    outs.append(tensor_to_stacks(self.g2(xb, noise)))
                else:
                    outs.append(tensor_to_stacks(self.g2(xb)))
        finally:
            self.g2.train(was)
        return np.concatenate(outs) if outs else np.zeros((0, self.config.planes, s, s, 3), np.uint8)

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, batch_size: int = 64) -> np.ndarray:
        """``n`` multi-focus stacks ``(n, planes, S, S, 3)`` uint8: ``z -> G1 -> I0 -> G2``.

        Both generators run in eval mode (batch norm uses its running statistics), so a stack
        does not depend on the others in its batch; the same ``seed`` gives the same stacks.
        """
        base = self._base(n, seed, batch_size)
        return self.stacks_from_base(base, batch_size, seed=seed)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def load_mi_gan(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[MIGAN, dict[str, Any]]:
    """Load a trained MI-GAN from ``mi-gan.pt`` or a run folder holding one.

    Returns:
        ``(model, meta)``: the model (eval mode) and the file's metadata.

    Raises:
        DataError: missing or unreadable file, not an MI-GAN checkpoint.
    """

    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.is_file():
        raise DataError(p, f"no trained MI-GAN here (expected a run folder with {MODEL_FILE} or the file itself)")
    blob = safe_torch_load(p, map_location, "MI-GAN weights")  # weights_only: a crafted file runs no code
    if not isinstance(blob, dict) or blob.get("generator") != "mi-gan" or "state" not in blob:
        raise DataError(p, "not an MI-GAN weights file (no generator='mi-gan' entry)")
    if not isinstance(blob.get("config"), dict) or not isinstance(blob["state"], dict):
        raise DataError(p, "not an MI-GAN weights file ('config' / 'state' are not dicts)")
    meta = blob.get("meta", {})
    if not isinstance(meta, dict):
        raise DataError(p, f"not an MI-GAN weights file ('meta' is a {type(meta).__name__})")
    try:
        cfg = MIGANConfig.from_dict(blob["config"])
        model = MIGAN(cfg)
        model.load_state_dict(blob["state"])
    except (ValueError, RuntimeError, TypeError, KeyError, AttributeError) as exc:
        raise DataError(p, f"weights do not fit MI-GAN ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]})") from None
    model.eval()
    return model.to(map_location), dict(meta)


def save_mi_gan(model: MIGAN, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (config + weights of G1, D1, G2, D2 + ``meta``) atomically."""

    path = Path(path)
    blob = {"generator": "mi-gan", "config": model.config.to_dict(),
            "state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": dict(meta or {})}
    return save_torch(path, plain_state(blob))  # through a buffer: identical weights give identical bytes


#: Name of the trained-model file in a run folder.
MODEL_FILE = "mi-gan.pt"


def create(seed: int = 0, **overrides: Any) -> MIGAN:
    """Registry factory: ``generators.create_stack("mi-gan", image_size=64, g1_width=32, ...)``."""
    return MIGAN(MIGANConfig.from_dict(overrides), seed=seed)


def _shapes_summary(cfg: MIGANConfig) -> list[tuple[str, Sequence[int]]]:
    """(stage, shape) pairs of one sample through MI-GAN (documentation / tests)."""
    s, p, c = cfg.image_size, cfg.planes, cfg.latent_channels
    return [("z", (cfg.z_dim,)), ("I0", (3, s, s)), ("encoding", (c, 4, 4)), ("volume", (c, p, 4, 4)),
            ("resnet", (c, p, 4, 4)), ("plane", (3, s, s)), ("stack", (3, p, s, s)), ("score", ())]
