"""Sharp-GAN (Butte et al., ISBI 2022): distance-map pix2pix plus the sharpness loss (Eq. 4-5).

``sharp-gan`` is :class:`generators.pix2pix.Pix2PixModule` conditioned on the normalized
nucleus distance map with ``beta = 1`` and ``lam = 0.1``; the contour map fed to the loss is
``gbench.data.conditioning.contour_map`` of the instance map (nucleus pixels with a 4-neighbour
of another label, so the shared boundary of touching nuclei is included; the paper derives it
"from the binary nuclei masks", which cannot show shared boundaries, the case the loss is for).

The paper's Eq. 1 is the *total* loss and has no L1 term; ``sharp-gan`` keeps pix2pix's
``lambda_l1 = 100`` and non-saturating G loss by default. ``--set lambda_l1=0 --set
gan_loss=minimax`` trains Eq. 1 literally; :meth:`generators.pix2pix.Pix2PixModule.deviations`
lists every departure (also ``beta`` and ``lam``, for which the paper gives no value), and
``train-gen`` writes that list to ``run.json``.
"""
from __future__ import annotations

from typing import Any

from gbench.generators.pix2pix import Pix2PixConfig, Pix2PixModule, _checked
from gbench.generators.sharpness import BT601, DEFAULT_BETA, DEFAULT_LAM, NEIGHBOURS, sharpness_loss, sharpness_map

__all__ = ["sharpness_loss", "sharpness_map", "sharp_gan", "BT601", "DEFAULT_BETA", "DEFAULT_LAM", "NEIGHBOURS"]

def sharp_gan(**overrides: Any) -> Pix2PixModule:
    """``sharp-gan``: distance-map pix2pix with ``beta * L_sharp`` (defaults beta 1, lam 0.1)."""
    opts = {"conditioning": "distance-map", "beta": DEFAULT_BETA, "lam": DEFAULT_LAM, **_checked(overrides)}
    cfg = Pix2PixConfig(**opts)
    if cfg.beta <= 0:
        raise ValueError("sharp-gan needs beta > 0 (beta = 0 is gan-dist)")
    return Pix2PixModule(cfg)
