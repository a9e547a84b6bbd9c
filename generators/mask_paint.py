"""``mask-paint``: the trivial floor of Table 1 -- nuclei and background painted in mean colours.

No learning. The generated image is the binary nucleus mask of the input painted with two
colours: every nucleus pixel gets the training split's mean nucleus colour (mean RGB over all
nucleus pixels), every background pixel its mean background colour. A GAN that does not beat this
floor on a quality metric has learned nothing the metric can see beyond "where the nuclei are and
what colour tissue is on average".

"Training" is one pass: ``training_step`` adds each batch's nucleus and background pixel sums
and counts (float64 buffers, saved in the checkpoint) and logs nothing that is optimised.
``gbench train-gen mask-paint`` runs one epoch of the usual training crop stream by default
(:attr:`MaskPaintModule.default_epochs`), i.e. as many crops as the grid covering the training
tiles, so the colours are the means over about one random-crop sweep of the training split (the
crop stream's flips and rotations do not change a mean). More steps (``--steps``) only refine the
same estimate. Under DDP each step's sums are all-reduced over ranks, so every rank holds the
same colours.

Before any training pixel of a class is seen, that class is painted with the mean of all pixels
seen (mid grey, 0.5, before any pixel at all).

The generator registers for ``binary-mask`` conditioning only (a distance map is positive on the
same pixels, so nothing would change). ``image_size``, ``lr`` and ``init_seed`` are accepted so
the trainer can set them; they change nothing.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn

from gbench.generators.base import GeneratorModule

__all__ = ["MaskPaintConfig", "MaskPaintModule", "mask_paint"]


@dataclass(frozen=True)
class MaskPaintConfig:
    """Options of ``mask-paint`` (none change the output except through the training data)."""

    conditioning: Literal["binary-mask"] = "binary-mask"
    image_size: int = 64
    lr: float = 0.0
    init_seed: int = 0

    def __post_init__(self) -> None:
        if self.conditioning != "binary-mask":
            raise ValueError(f"mask-paint paints the binary mask: conditioning must be 'binary-mask', "
                             f"got {self.conditioning!r}")
        if self.image_size <= 0:
            raise ValueError(f"image_size must be positive, got {self.image_size}")


class MaskPaintModule(GeneratorModule):
    """Two mean colours (background, nucleus) accumulated from the training crops.

    Buffers: ``sums`` (2, 3) float64 -- summed RGB in [0, 1] of background (row 0) and nucleus
    (row 1) pixels; ``counts`` (2,) float64 -- how many pixels each row summed.
    """

    #: Default length of a ``train-gen`` run when ``--steps`` is not given: one pass.
    default_epochs: int = 1

    def __init__(self, config: MaskPaintConfig) -> None:
        super().__init__(config)
        self.register_buffer("sums", torch.zeros(2, 3, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(2, dtype=torch.float64))
        # engine.fit checkpoints optimisers and needs at least one; nothing here is optimised:
        # an empty placeholder parameter under SGD with lr 0 keeps the engine's contract
        self.placeholder = nn.Parameter(torch.zeros(0), requires_grad=False)
        self.optimizers = {"none": torch.optim.SGD([self.placeholder], lr=0.0)}
        self._distributed = False

    def wrap_ddp(self, wrap: Any) -> None:
        """No network to wrap: each step's sums are all-reduced over the ranks instead."""
        self._distributed = True

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """Add the batch's background / nucleus pixel sums and counts (no optimisation)."""
        fg = (batch["cond"][:, 0] > 0.5).to(torch.float64)  # (N, H, W)
        image = batch["image"].to(torch.float64)  # (N, 3, H, W) in [0, 1]
        fg_sum = (image * fg[:, None]).sum(dim=(0, 2, 3))
        all_sum = image.sum(dim=(0, 2, 3))
        n_fg = fg.sum()
        delta_sums = torch.stack([all_sum - fg_sum, fg_sum])
        delta_counts = torch.stack([torch.tensor(float(fg.numel()), dtype=torch.float64, device=fg.device) - n_fg, n_fg])
        if self._distributed:
            packed = torch.cat([delta_sums.reshape(-1), delta_counts])
            dist.all_reduce(packed)
            delta_sums, delta_counts = packed[:6].reshape(2, 3), packed[6:]
        self.sums += delta_sums
        self.counts += delta_counts
        return {"nucleus_fraction": float(delta_counts[1] / delta_counts.sum().clamp_min(1.0))}

    def colours(self) -> torch.Tensor:
        """(2, 3) float64: mean background (row 0) and nucleus (row 1) RGB in [0, 1]."""
        total = self.counts.sum()
        overall = self.sums.sum(0) / total if total > 0 else torch.full((3,), 0.5, dtype=torch.float64,
                                                                          device=self.sums.device)
        rows = [self.sums[k] / self.counts[k] if self.counts[k] > 0 else overall for k in range(2)]
        return torch.stack(rows)

    @torch.no_grad()
    def generate(self, cond: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images: the nucleus colour where ``cond > 0.5``, the background colour elsewhere."""
        c = self.colours().to(device=cond.device, dtype=torch.float32)
        fg = cond[:, :1] > 0.5
        return torch.where(fg, c[1][None, :, None, None], c[0][None, :, None, None])


def mask_paint(**overrides: Any) -> MaskPaintModule:
    """``mask-paint``: the mean-colour floor (see the module docstring)."""
    known = {f.name for f in dataclasses.fields(MaskPaintConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"unknown generator option(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
    return MaskPaintModule(MaskPaintConfig(**overrides))
