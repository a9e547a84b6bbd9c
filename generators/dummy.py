"""``dummy``: a one-convolution stand-in generator for fast tests of training and synthesis.

G is a single 3x3 convolution from the conditioning map to RGB followed by a sigmoid, trained with
L1 only; it learns a blurred colouring of the map in a few steps. Not a GAN, not for results.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gbench.generators.base import GeneratorModule

__all__ = ["DummyConfig", "DummyModule", "dummy"]


@dataclass(frozen=True)
class DummyConfig:
    """Options of ``dummy`` (``image_size`` and ``lr`` are accepted so the trainer can set them)."""

    conditioning: Literal["binary-mask", "distance-map"] = "distance-map"
    image_size: int = 64
    lr: float = 1e-2
    init_seed: int = 0

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


class DummyModule(GeneratorModule):
    """3x3 conv + sigmoid; ``training_step`` minimises L1 to the real image."""

    def __init__(self, config: DummyConfig) -> None:
        super().__init__(config)
        self.G = nn.Conv2d(1, 3, 3, padding=1)
        gen = torch.Generator().manual_seed(config.init_seed)
        with torch.no_grad():
            self.G.weight.normal_(0.0, 0.1, generator=gen)
            self.G.bias.zero_()
        self.optimizers = {"G": torch.optim.Adam(self.G.parameters(), lr=config.lr)}

    def wrap_ddp(self, wrap: Any) -> None:
        self.__dict__["_g"] = wrap(self.G)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        g = self.__dict__.get("_g", self.G)
        opt = self.optimizers["G"]
        opt.zero_grad(set_to_none=True)
        loss = F.l1_loss(torch.sigmoid(g(batch["cond"])), batch["image"])
        loss.backward()
        opt.step()
        return {"l1": loss.item()}

    @torch.no_grad()
    def generate(self, cond: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.G(cond))


def dummy(**overrides: Any) -> DummyModule:
    known = {f.name for f in dataclasses.fields(DummyConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"unknown generator option(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
    return DummyModule(DummyConfig(**overrides))
