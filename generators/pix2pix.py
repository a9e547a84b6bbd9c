"""pix2pix (Isola et al., CVPR 2017): U-Net generator, 70x70 PatchGAN discriminator, GAN + L1.

Registered as ``gan-binary`` (conditioned on the binary nucleus mask) and ``gan-dist``
(conditioned on the Sharp-GAN distance map); ``sharp-gan`` is the same module with the sharpness
term switched on (``beta > 0``, :mod:`generators.sharp_gan`).

Where the Sharp-GAN paper is silent we follow pix2pix's paper and reference code:

* Generator: U-Net of ``num_downs`` stride-2 4x4 convolutions down to a 1x1 bottleneck
  (``num_downs = log2(image_size)``, capped at 8: 256 -> 8 as pix2pix's ``unet_256``, 128 -> 7,
  64 -> 6; for a size that is not a power of two, as many halvings as divide it exactly),
  widths ``ngf * min(2**k, 8)``, LeakyReLU(0.2) in the encoder, ReLU in the decoder, BatchNorm
  (no norm on the first encoder layer and on the bottleneck), skip connections by
  concatenation, dropout 0.5 in the three decoder blocks next to the bottleneck (pix2pix's
  ``unet_256``: its three ``ngf*8`` blocks with ``use_dropout``), tanh output in [-1, 1].
* Discriminator: ``NLayerDiscriminator`` with ``n_layers_d = 3`` (receptive field 70x70 pixels),
  ``ndf = 64``, on the concatenation of the conditioning map and the image (conditional GAN).
* Weights: N(0, 0.02) for convolutions, N(1, 0.02) for BatchNorm scales, zero biases, drawn
  from a ``torch.Generator`` seeded with ``init_seed``.
* Losses: Eq. 1-3 of Sharp-GAN are the conditional-GAN objective (Eq. 1 is the *total* loss:
  ``E[log D(x, y)] + E[log(1 - D(x, G(x))) + beta L_sharp]``, no L1 term). D maximises
  ``log D(x, y) + log(1 - D(x, G(x)))``, implemented as BCE-with-logits against labels 1 / 0
  and halved as in pix2pix. By default G uses the non-saturating form of Eq. 3 as pix2pix does:
  it minimises ``-log D(x, G(x))`` (BCE against label 1) instead of ``log(1 - D(x, G(x)))``
  (``gan_loss="minimax"`` minimises Eq. 3 itself), plus ``lambda_l1 * |y - G(x)|_1`` (pix2pix,
  default 100; **not in the paper's Eq. 1**) plus ``beta * L_sharp`` (0 for ``gan-binary`` /
  ``gan-dist``). ``lambda_l1=0, gan_loss="minimax"`` is Eq. 1 literally.
  :meth:`Pix2PixModule.deviations` lists where a config departs from the paper (written to
  ``run.json`` by ``gbench train-gen``).
* Optimiser: Adam with ``betas = (0.5, 0.999)`` (pix2pix); the learning rate comes from the run
  profile (Sharp-GAN: 1e-4), constant (pix2pix's linear decay is not mentioned by Sharp-GAN).
* One step: G(x) once, then a D update on (x, y) and (x, G(x).detach()) and a G update through
  the just-updated D with D's parameters frozen (pix2pix's ``optimize_parameters``).

Inputs to G are the conditioning map scaled from [0, 1] to [-1, 1]; the real image is scaled
the same way for the L1 term and D. ``generate`` returns images in [0, 1].
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gbench.engine import backward, optimizer_step
from gbench.generators.base import GeneratorModule, set_requires_grad, to_signed, to_unit
from gbench.generators.sharpness import sharpness_loss

__all__ = ["Pix2PixConfig", "UNetGenerator", "PatchDiscriminator", "Pix2PixModule", "gan_binary", "gan_dist",
           "num_downs_for"]

Conditioning = Literal["binary-mask", "distance-map"]
_CONDITIONINGS = ("binary-mask", "distance-map", "contour-map")


@dataclass(frozen=True)
class Pix2PixConfig:
    """Options of the pix2pix family (defaults: pix2pix / Sharp-GAN paper values).

    Attributes:
        conditioning: input map: ``binary-mask`` or ``distance-map`` (one channel each).
        image_size: training crop side; fixes the U-Net depth (``num_downs_for``).
        ngf: generator width (pix2pix 64).
        ndf: discriminator width (pix2pix 64).
        n_layers_d: PatchGAN layers (3: 70x70 receptive field).
        norm: ``batch`` (pix2pix default) or ``instance``.
        dropout: dropout probability in the decoder blocks next to the bottleneck (0.5).
        n_dropout: how many of those blocks get dropout (3, as pix2pix's unet_256).
        lambda_l1: weight of the L1 term (pix2pix 100; the paper's Eq. 1 has none: 0).
        gan_loss: G's adversarial term: ``non-saturating`` (pix2pix, ``-log D(x, G(x))``) or
            ``minimax`` (the paper's Eq. 3, ``log(1 - D(x, G(x)))``).
        beta: weight of the sharpness loss (0: off; ``sharp-gan`` sets 1.0).
        lam: sharpness-loss contrast scale lambda, in [0, 1] gray units.
        lr: Adam learning rate (the run profile overrides it; Sharp-GAN 1e-4).
        adam_betas: Adam (beta1, beta2) (pix2pix (0.5, 0.999)).
        init_gain: std of the N(0, gain) weight initialisation (pix2pix 0.02).
        init_seed: seed of the weight initialisation.
    """

    conditioning: Conditioning = "distance-map"
    image_size: int = 256
    ngf: int = 64
    ndf: int = 64
    n_layers_d: int = 3
    norm: Literal["batch", "instance"] = "batch"
    dropout: float = 0.5
    n_dropout: int = 3
    lambda_l1: float = 100.0
    gan_loss: Literal["non-saturating", "minimax"] = "non-saturating"
    beta: float = 0.0
    lam: float = 0.1
    lr: float = 1e-4
    adam_betas: tuple[float, float] = field(default=(0.5, 0.999))
    init_gain: float = 0.02
    init_seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "adam_betas", tuple(float(b) for b in self.adam_betas))
        if self.conditioning not in _CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {', '.join(_CONDITIONINGS)}, got {self.conditioning!r}")
        if self.image_size < 32 or self.image_size % 32:
            raise ValueError(f"image_size must be a positive multiple of 32, got {self.image_size}")
        for name in ("ngf", "ndf", "n_layers_d"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.norm not in ("batch", "instance"):
            raise ValueError(f"norm must be 'batch' or 'instance', got {self.norm!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.n_dropout < 0:
            raise ValueError(f"n_dropout must be >= 0, got {self.n_dropout}")
        if self.lambda_l1 < 0 or self.beta < 0:
            raise ValueError("lambda_l1 and beta must be non-negative")
        if self.gan_loss not in ("non-saturating", "minimax"):
            raise ValueError(f"gan_loss must be 'non-saturating' or 'minimax', got {self.gan_loss!r}")
        if self.lam <= 0:
            raise ValueError(f"lam must be positive, got {self.lam}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise ValueError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas}")

    @property
    def in_channels(self) -> int:
        return 1


def num_downs_for(image_size: int, cap: int = 8) -> int:
    """U-Net depth: halvings of ``image_size`` that divide it exactly, at most ``cap`` (256 -> 8)."""
    n = 0
    while image_size % 2 == 0 and image_size > 1 and n < cap:
        image_size //= 2
        n += 1
    return n


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    return nn.InstanceNorm2d(ch, affine=False, track_running_stats=False)


class UNetGenerator(nn.Module):
    """pix2pix U-Net (``UnetGenerator`` of the reference code, unrolled into encoder/decoder lists).

    Args:
        in_channels: conditioning channels.
        out_channels: image channels (3).
        num_downs: stride-2 convolutions (input side must be divisible by ``2**num_downs``).
        ngf: width of the first layer; level k has ``ngf * min(2**k, 8)`` channels.
        norm: ``batch`` or ``instance`` (convolutions followed by BatchNorm have no bias).
        dropout: dropout probability in the ``n_dropout`` decoder blocks next to the bottleneck.
        n_dropout: number of such blocks.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 3, num_downs: int = 8, ngf: int = 64,
                 norm: str = "batch", dropout: float = 0.5, n_dropout: int = 3) -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2, got {num_downs}")
        self.num_downs = num_downs
        bias = norm != "batch"
        ch = [ngf * min(2 ** k, 8) for k in range(num_downs)]  # output channels of encoder level k
        enc: list[nn.Module] = [nn.Conv2d(in_channels, ch[0], 4, 2, 1, bias=bias)]
        for k in range(1, num_downs):
            layers: list[nn.Module] = [nn.LeakyReLU(0.2, True), nn.Conv2d(ch[k - 1], ch[k], 4, 2, 1, bias=bias)]
            if k < num_downs - 1:  # the bottleneck (1x1 for a power-of-two input) has no norm
                layers.append(_norm(norm, ch[k]))
            enc.append(nn.Sequential(*layers))
        self.encoder = nn.ModuleList(enc)
        dec: list[nn.Module] = []
        for k in range(num_downs - 1, 0, -1):  # decoder block k maps level k back to level k-1
            cin = ch[k] if k == num_downs - 1 else 2 * ch[k]
            layers = [nn.ReLU(True), nn.ConvTranspose2d(cin, ch[k - 1], 4, 2, 1, bias=bias), _norm(norm, ch[k - 1])]
            # dropout in the n_dropout blocks right after the innermost one (pix2pix unet_256)
            if dropout > 0 and num_downs - 1 - n_dropout <= k < num_downs - 1:
                layers.append(nn.Dropout(dropout))
            dec.append(nn.Sequential(*layers))
        dec.append(nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(2 * ch[0], out_channels, 4, 2, 1), nn.Tanh()))
        self.decoder = nn.ModuleList(dec)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, 3, H, W) in [-1, 1]; H, W divisible by ``2**num_downs``."""
        div = 2 ** self.num_downs
        if cond.shape[-1] % div or cond.shape[-2] % div:
            raise ValueError(f"input side must be divisible by {div}, got {tuple(cond.shape[-2:])}")
        # As in pix2pix's UnetSkipConnectionBlock, the encoder's LeakyReLU is in place, so the
        # skip carried to the decoder is LeakyReLU(encoder features) (pix2pix's behaviour, kept).
        skips = []
        h = cond
        for layer in self.encoder:
            h = layer(h)
            skips.append(h)
        h = self.decoder[0](skips[-1])
        for i, layer in enumerate(self.decoder[1:], start=2):
            h = layer(torch.cat([skips[-i], h], dim=1))
        return h


class PatchDiscriminator(nn.Module):
    """pix2pix ``NLayerDiscriminator``: with ``n_layers = 3`` each output logit sees a 70x70 patch.

    Args:
        in_channels: conditioning channels + image channels.
        ndf: first-layer width.
        n_layers: stride-2 layers after the first.
        norm: ``batch`` or ``instance``.
    """

    def __init__(self, in_channels: int = 4, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=bias), _norm(norm, ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=bias), _norm(norm, ndf * mult),
                   nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        """(N, C+3, H, W) -> (N, 1, h, w) patch logits."""
        return self.model(pair)


def receptive_field(n_layers: int = 3) -> int:
    """Receptive field (pixels) of one PatchGAN output: 70 for ``n_layers = 3``."""
    rf = 1
    # walk back from the output: two stride-1 4x4 convs, then n_layers stride-2 4x4 convs
    for stride in [1, 1] + [2] * n_layers:
        rf = (rf - 1) * stride + 4
    return rf


class _DiscriminatorPair(nn.Module):
    """D on fake then real pairs inside one forward, so a DDP wrapper sees one forward per update
    while BatchNorm still normalises the fake and real batches separately (as pix2pix)."""

    def __init__(self, d: nn.Module) -> None:
        super().__init__()
        self.d = d

    def forward(self, fake_pair: torch.Tensor, real_pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.d(fake_pair), self.d(real_pair)


def init_weights(net: nn.Module, gain: float, generator: torch.Generator) -> None:
    """pix2pix ``init_weights(init_type='normal')`` with an explicit generator."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain, generator=generator)
            nn.init.zeros_(m.bias)


class Pix2PixModule(GeneratorModule):
    """Trainable pix2pix conditional GAN: networks ``G`` and ``D``, optimisers ``{"G", "D"}``.

    ``training_step`` logs ``d_real``, ``d_fake`` (the two BCE terms of D), ``g_gan``, ``l1``
    (mean absolute error in [-1, 1] units, i.e. twice the [0, 1] error), ``sharp`` (Eq. 4 on the
    batch, logged even when ``beta = 0``) and ``g_total``.
    """

    #: steps through ``engine.backward`` / ``engine.optimizer_step`` (one gradient scaler for both
    #: optimisers, updated once per step by ``fit``): ``--amp fp16`` works
    supports_fp16 = True

    def __init__(self, config: Pix2PixConfig) -> None:
        super().__init__(config)
        gen = torch.Generator().manual_seed(int(config.init_seed))
        self.G = UNetGenerator(config.in_channels, 3, num_downs_for(config.image_size), config.ngf, config.norm,
                               config.dropout, config.n_dropout)
        self.D = PatchDiscriminator(config.in_channels + 3, config.ndf, config.n_layers_d, config.norm)
        init_weights(self.G, config.init_gain, gen)
        init_weights(self.D, config.init_gain, gen)
        self.optimizers = {
            "G": torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=config.adam_betas),
            "D": torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=config.adam_betas),
        }
        # the networks training_step calls; DDP wrappers replace them (not registered: state_dict
        # keys stay G.* / D.* whatever the world size)
        self.__dict__["_g_train"] = self.G
        self.__dict__["_d_pair"] = _DiscriminatorPair(self.D)

    def wrap_ddp(self, wrap: Any) -> None:
        """Engine hook: wrap G and the (fake, real) discriminator pair for DistributedDataParallel."""
        self.__dict__["_g_train"] = wrap(self.G)
        self.__dict__["_d_pair"] = wrap(_DiscriminatorPair(self.D))

    def _sharpness(self, contour: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return sharpness_loss(contour, to_unit(fake), self.config.lam)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """One D update and one G update on ``batch`` (``cond``, ``image`` in [0, 1], ``contour``)."""
        cond = to_signed(batch["cond"])
        real = to_signed(batch["image"])
        opt_g, opt_d = self.optimizers["G"], self.optimizers["D"]
        fake = self._g_train(cond)

        # D: maximise log D(x, y) + log(1 - D(x, G(x)))  (Eq. 2-3), halved as pix2pix
        set_requires_grad(self.D, True)
        opt_d.zero_grad(set_to_none=True)
        logit_fake, logit_real = self._d_pair(torch.cat([cond, fake.detach()], 1), torch.cat([cond, real], 1))
        d_fake = F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake))
        d_real = F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
        backward(self, 0.5 * (d_fake + d_real))
        optimizer_step(self, opt_d)

        # G: GAN term (non-saturating or Eq. 3) + lambda_l1 * L1 + beta * L_sharp, D frozen
        set_requires_grad(self.D, False)
        opt_g.zero_grad(set_to_none=True)
        total, g_gan, l1, sharp = self.generator_loss(cond, fake, real, batch["contour"])
        backward(self, total)
        optimizer_step(self, opt_g)
        set_requires_grad(self.D, True)
        return {"d_real": d_real.item(), "d_fake": d_fake.item(), "g_gan": g_gan.item(), "l1": l1.item(),
                "sharp": sharp.item(), "g_total": total.item()}

    def generator_loss(self, cond: torch.Tensor, fake: torch.Tensor, real: torch.Tensor,
                       contour: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """G's objective on one batch (``cond``, ``fake``, ``real`` in [-1, 1]) through the current D.

        Returns:
            ``(total, g_gan, l1, sharp)``: ``total = g_gan + lambda_l1 * l1 + beta * sharp``, where
            ``g_gan`` is ``mean log(1 - D(x, G(x)))`` (``minimax``, Eq. 3) or ``mean -log D(x, G(x))``
            (``non-saturating``), ``l1`` the mean absolute error in [-1, 1] units and ``sharp`` Eq. 4
            (computed without a gradient when ``beta = 0``).
        """
        cfg = self.config
        logit = self.D(torch.cat([cond, fake], 1))
        if cfg.gan_loss == "minimax":  # log(1 - D(x, G(x))) = -BCE(logit, 0)
            g_gan = -F.binary_cross_entropy_with_logits(logit, torch.zeros_like(logit))
        else:  # -log D(x, G(x))
            g_gan = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
        l1 = F.l1_loss(fake, real)
        total = g_gan + cfg.lambda_l1 * l1 if cfg.lambda_l1 > 0 else g_gan
        if cfg.beta > 0:
            sharp = self._sharpness(contour, fake)
            total = total + cfg.beta * sharp
        else:
            with torch.no_grad():
                sharp = self._sharpness(contour, fake.detach())
        return total, g_gan, l1, sharp

    def deviations(self) -> list[dict[str, Any]]:
        """Where this config departs from the Sharp-GAN paper: ``[{"setting", "value", "note"}]``.

        Listed: an L1 term (``lambda_l1 > 0``, pix2pix; not in the paper's Eq. 1), the
        non-saturating G loss (pix2pix; Eq. 3 is ``log(1 - D)``), and with the sharpness loss on,
        ``beta`` and ``lam`` (the paper gives no value) and the contour map (instance boundaries;
        the paper derives it from the binary mask). An empty list: Eq. 1 literally.
        """
        cfg = self.config
        out: list[dict[str, Any]] = []
        if cfg.lambda_l1 > 0:
            out.append({"setting": "lambda_l1", "value": float(cfg.lambda_l1),
                        "note": "L1 weight: pix2pix; not in the paper's Eq. 1 (--set lambda_l1=0 removes it)"})
        if cfg.gan_loss == "non-saturating":
            out.append({"setting": "gan_loss", "value": "non-saturating",
                        "note": "G minimises -log D(x, G(x)) (pix2pix), not Eq. 3's log(1 - D(x, G(x))) "
                                "(--set gan_loss=minimax)"})
        if cfg.beta > 0:
            out.append({"setting": "beta", "value": float(cfg.beta), "note": "sharpness weight: paper gives no value"})
            out.append({"setting": "lam", "value": float(cfg.lam), "note": "lambda of Eq. 5: paper gives no value"})
            out.append({"setting": "contour_map", "value": "instance boundaries",
                        "note": "includes shared boundaries of touching nuclei; the paper derives the contour map "
                                "from the binary mask"})
        return out

    @torch.no_grad()
    def generate(self, cond: torch.Tensor) -> torch.Tensor:
        was_training = self.G.training
        self.G.eval()
        try:
            return to_unit(self.G(to_signed(cond))).clamp_(0.0, 1.0)
        finally:
            self.G.train(was_training)


def gan_binary(**overrides: Any) -> Pix2PixModule:
    """``gan-binary``: pix2pix on the binary nucleus mask (Sharp-GAN's Table 1 baseline)."""
    return Pix2PixModule(Pix2PixConfig(**{"conditioning": "binary-mask", **_checked(overrides)}))


def gan_dist(**overrides: Any) -> Pix2PixModule:
    """``gan-dist``: pix2pix on the normalized distance map (Sharp-GAN without the sharpness loss)."""
    return Pix2PixModule(Pix2PixConfig(**{"conditioning": "distance-map", **_checked(overrides)}))


def _checked(overrides: dict[str, Any], cls: type = Pix2PixConfig) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"unknown generator option(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
    return dict(overrides)

