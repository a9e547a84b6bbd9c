"""The interface every generator implements: a trainable ``nn.Module`` for ``gbench.engine.fit``.

Tensor conventions at the boundary (STYLE.md section 7): conditioning maps ``cond`` are
float ``(N, C, H, W)`` in [0, 1]; images are float ``(N, 3, H, W)`` in [0, 1]. A generator that
works in [-1, 1] (tanh output) converts inside.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from gbench.data.conditioning import condition, contour_map

__all__ = ["GeneratorModule", "set_requires_grad", "to_unit", "to_signed"]


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1]."""
    return x * 2.0 - 1.0


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return (x + 1.0) * 0.5


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


class GeneratorModule(nn.Module):
    """Base class: holds ``config`` (a frozen dataclass with ``conditioning`` and ``image_size``),
    ``optimizers`` and the generator network ``G``; subclasses add ``training_step``.

    Attributes:
        name: registry name (set by ``generators.create``).
        config: the frozen config the module was built from.
        optimizers: ``{"G": Adam, "D": Adam}`` for a GAN (owned here, stepped in ``training_step``).
    """

    name: str = "unnamed"
    optimizers: dict[str, torch.optim.Optimizer]

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    # -- data -------------------------------------------------------------------------------
    @property
    def conditioning(self) -> str:
        return str(self.config.conditioning)

    def condition_map(self, instances: np.ndarray) -> np.ndarray:
        """(H, W) instance map -> (C, H, W) float32 conditioning map in [0, 1]."""
        return condition(self.conditioning, instances)

    def train_item(self, image: np.ndarray, instances: np.ndarray) -> dict[str, np.ndarray]:
        """A training item from a crop: ``cond`` (C,H,W), ``image`` (3,H,W) in [0,1], ``contour`` (1,H,W)."""
        return {
            "cond": self.condition_map(instances),
            "image": np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0),
            "contour": contour_map(instances).astype(np.float32)[None],
        }

    # -- inference --------------------------------------------------------------------------
    def generate(self, cond: torch.Tensor) -> torch.Tensor:
        """Images for conditioning maps, in eval mode (BatchNorm running statistics, no dropout),
        so image k depends only on its own map.

        Args:
            cond: (N, C, H, W) float in [0, 1].

        Returns:
            (N, 3, H, W) float in [0, 1].
        """
        raise NotImplementedError

    def config_dict(self) -> dict[str, Any]:
        """The config as a plain dict (stored in checkpoints; ``create(name, **d)`` rebuilds it)."""
        d = dataclasses.asdict(self.config)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
