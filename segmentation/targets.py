"""Training targets of a segmenter and their losses: ``binary``, ``contour``, ``distance``.

A target turns an instance map into what the network regresses, says how many output channels
the network needs, computes the loss from logits, and turns logits into the maps that
``segmentation.postprocess`` reads.

* ``binary`` (the paper's setting): 1 channel, foreground probability; loss = binary
  cross-entropy + soft Dice (batch-level) on the foreground.
* ``contour``: 3 channels, classes 0 = background, 1 = inside, 2 = boundary (the
  ``gbench.data.conditioning.contour_map`` pixels: a nucleus pixel whose 4-neighbour carries
  another label, so shared boundaries between touching nuclei are boundary too); loss =
  cross-entropy + soft Dice on the inside class.
* ``distance``: 2 channels, foreground logit and a distance logit; the distance target is each
  nucleus pixel's Euclidean distance to the nearest pixel outside its own nucleus (background or
  another nucleus), divided by the nucleus's maximum, so every nucleus peaks at 1 in its
  interior and touching nuclei are separated by a valley; loss = BCE + soft Dice on the
  foreground + mean squared error of ``sigmoid(distance logit)`` against the map.

Shapes: ``encode`` returns a (C_t, H, W) float32 array (``binary``: 1 channel 0/1;
``contour``: 1 channel of class ids as floats; ``distance``: foreground then distance);
``loss`` takes logits (N, C, H, W) and targets (N, C_t, H, W); ``maps`` returns (N, C, H, W)
probabilities (``binary``: foreground; ``contour``: softmax over 3 classes; ``distance``:
foreground probability and distance in [0, 1]).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from gbench.data.conditioning import contour_map
from gbench.data.labels import relabel_sequential

__all__ = ["TargetName", "TARGETS", "Target", "get_target", "boundary_distance", "contour_classes"]

TargetName = Literal["binary", "contour", "distance"]
TARGETS: tuple[str, ...] = ("binary", "contour", "distance")


def contour_classes(instances: np.ndarray) -> np.ndarray:
    """3-class map: 0 background, 1 nucleus inside, 2 nucleus boundary (uint8, (H, W))."""
    inst = np.asarray(instances)
    out = (inst > 0).astype(np.uint8)
    out[contour_map(inst) > 0] = 2
    return out


def boundary_distance(instances: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Per-nucleus distance to the nucleus boundary.

    Each nucleus pixel gets the Euclidean distance to the nearest pixel *not* in its own
    nucleus (background or another nucleus); pixels beyond the image border count as outside.
    With ``normalize`` each nucleus is divided by its own maximum (values in (0, 1]). Background
    is 0.

    Args:
        instances: (H, W) integer instance map, 0 = background.
        normalize: scale each nucleus to a maximum of 1.

    Returns:
        (H, W) float32 array.
    """
    lab, n = relabel_sequential(np.asarray(instances))
    out = np.zeros(lab.shape, dtype=np.float32)
    if n == 0:
        return out
    for k, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        crop = np.pad(lab[sl] == k, 1)  # pad: the border of the crop (and image) is outside
        d = ndi.distance_transform_edt(crop)[1:-1, 1:-1]
        m = lab[sl] == k
        if normalize:
            d = d / max(float(d[m].max()), 1e-12)
        out[sl][m] = d[m]
    return out


def _soft_dice_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    inter = (prob * target).sum()
    return 1.0 - (2.0 * inter + eps) / (prob.sum() + target.sum() + eps)


@dataclass(frozen=True)
class Target:
    """A training target (see the module docstring).

    Attributes:
        name: ``binary``, ``contour`` or ``distance``.
        channels: network output channels it needs.
    """

    name: str
    channels: int

    def encode(self, instances: np.ndarray) -> np.ndarray:
        """Target array (C_t, H, W) float32 of an instance map."""
        inst = np.asarray(instances)
        if self.name == "binary":
            return (inst > 0).astype(np.float32)[None]
        if self.name == "contour":
            return contour_classes(inst).astype(np.float32)[None]
        return np.stack([(inst > 0).astype(np.float32), boundary_distance(inst)])

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss of logits (N, C, H, W) against encoded targets (N, C_t, H, W)."""
        if logits.shape[1] != self.channels:
            raise ValueError(f"target {self.name!r} needs {self.channels} output channels, got {logits.shape[1]}")
        if self.name == "binary":
            return (F.binary_cross_entropy_with_logits(logits, target)
                    + _soft_dice_loss(torch.sigmoid(logits), target))
        if self.name == "contour":
            cls = target[:, 0].long()
            prob = torch.softmax(logits, dim=1)
            return F.cross_entropy(logits, cls) + _soft_dice_loss(prob[:, 1], (cls == 1).to(prob.dtype))
        fg, dist = target[:, :1], target[:, 1:2]
        fg_logit = logits[:, :1]
        return (F.binary_cross_entropy_with_logits(fg_logit, fg) + _soft_dice_loss(torch.sigmoid(fg_logit), fg)
                + F.mse_loss(torch.sigmoid(logits[:, 1:2]), dist))

    def maps(self, logits: torch.Tensor) -> torch.Tensor:
        """Probability / regression maps (N, C, H, W) from logits, read by post-processing."""
        if self.name == "contour":
            return torch.softmax(logits, dim=1)
        return torch.sigmoid(logits)


_TARGETS = {"binary": Target("binary", 1), "contour": Target("contour", 3), "distance": Target("distance", 2)}


def get_target(name: str) -> Target:
    """The target called ``name``; raises ValueError naming the known ones."""
    try:
        return _TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r} (known: {', '.join(TARGETS)})") from None
