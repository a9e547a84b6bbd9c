"""Frozen, pretrained generators: the contract of a generator gbench scores but does not train.

A generator trained elsewhere (its own package, its own weights) needs only this
(:class:`FrozenGenerator`, a :class:`typing.Protocol`: subclass it or just match it):

``conditioning``
    which map it takes: ``"binary"``, ``"distance"``, ``"contour"`` or ``"instances"``
    (:data:`CONDITIONING_NAMES` gives gbench's name of each: ``binary-mask``, ``distance-map``,
    ``contour-map``, ``instances``; gbench's own names are accepted too).
``generate(maps) -> images``
    one batch. ``maps``: float32 ``(N, 1, H, W)`` torch tensor on the run's device.
    ``binary``: 1 on nucleus pixels, 0 elsewhere. ``distance``: per-nucleus Euclidean distance
    from each pixel to its nucleus's centroid, scaled to [0, 1] within each nucleus (the Sharp-GAN
    map, :func:`gbench.data.conditioning.distance_map`).
    ``contour``: 1 on nucleus pixels touching another label, 0 elsewhere. ``instances``: the
    instance ids themselves as float32 (0 = background, 1 ... K one per nucleus; *not* in
    [0, 1]). ``images``: a floating torch tensor ``(N, 3, H, W)`` with values in [0, 1] (RGB,
    same N, H, W as ``maps``), on any device. Called in ``torch.no_grad()``; image k must depend
    on map k only (eval mode).

Its factory is ``factory(checkpoint: str | None = None, **options) -> FrozenGenerator``: it
loads its own weights from ``checkpoint`` (``--checkpoint PATH``), in any format it likes;
``None`` means its default weights (or none). If the object has ``to``/``eval`` (an
``nn.Module``), gbench moves it to the device and calls ``eval()``.

gbench wraps the built object in :class:`FrozenModule`, which gives the pipelines what they use
from a trained generator (``conditioning``, ``condition_map``, ``generate``) and checks every output
batch in one place, :func:`check_output`: a wrong type, dtype, shape, channel count, a NaN/inf or
a value outside [0, 1] is one ValueError naming the plugin and what was wrong, raised before the
batch is used, so nothing is written from it.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from gbench.data.conditioning import condition

__all__ = ["GeneratorOutputError", "FrozenGenerator", "FrozenEntry", "FrozenModule", "CONDITIONING_NAMES", "check_output",
           "is_frozen_class", "conditioning_name", "RANGE_ATOL"]

#: The conditioning a frozen generator declares -> gbench's name of that map.
CONDITIONING_NAMES: dict[str, str] = {"binary": "binary-mask", "distance": "distance-map", "contour": "contour-map",
                                      "instances": "instances"}
#: How far outside [0, 1] an output value may lie (float rounding) before it is refused; values
#: inside the tolerance are clamped.
RANGE_ATOL = 1e-4


class GeneratorOutputError(ValueError):
    """A generator's output batch is not a float ``(N, 3, H, W)`` tensor in [0, 1] (one line: what was wrong)."""


@runtime_checkable
class FrozenGenerator(Protocol):
    """A pretrained generator gbench runs but never trains (see the module docstring).

    Attributes:
        conditioning: ``"binary"``, ``"distance"``, ``"contour"`` or ``"instances"``.
    """

    conditioning: str

    def generate(self, maps: torch.Tensor) -> torch.Tensor:
        """Images ``(N, 3, H, W)`` float in [0, 1] for maps ``(N, 1, H, W)`` float32."""
        ...


@dataclass(frozen=True)
class FrozenEntry:
    """How :data:`generators.GENERATORS` stores a frozen generator's factory (so it is told apart
    from a trainable ``GeneratorModule`` factory without calling it)."""

    factory: Any
    description: str = ""


def is_frozen_class(cls: Any) -> bool:
    """Whether ``cls`` (a class) looks like a :class:`FrozenGenerator`: it has a callable ``generate``."""
    return isinstance(cls, type) and callable(getattr(cls, "generate", None))


def frozen_factory_class(factory: Any) -> type | None:
    """The class a frozen factory makes: the factory itself when it is a class, else its return annotation."""
    if isinstance(factory, type):
        return factory
    try:
        ret = typing.get_type_hints(factory).get("return")
    except Exception:
        return None
    return ret if isinstance(ret, type) else None


def conditioning_name(name: str, value: Any) -> str:
    """gbench's name of a frozen generator's declared conditioning (ValueError naming it otherwise)."""
    if isinstance(value, str):
        if value in CONDITIONING_NAMES:
            return CONDITIONING_NAMES[value]
        if value in CONDITIONING_NAMES.values():
            return value
    raise ValueError(f"generator {name!r}: conditioning {value!r} is not one of "
                     f"{', '.join(CONDITIONING_NAMES)}")


def _instance_ids(instances: np.ndarray) -> np.ndarray:
    """(H, W) instance map -> (1, H, W) float32 ids 1..K (consecutive, in order of first id), 0 background."""
    inst = np.asarray(instances)
    if inst.ndim != 2:
        raise ValueError(f"instance map must be 2-D (H, W), got shape {inst.shape}")
    ids, inverse = np.unique(inst, return_inverse=True)
    if ids.size and ids[0] != 0:
        inverse = inverse + 1  # no background pixel: ids start at 1
    out = inverse.reshape(inst.shape).astype(np.float32)
    return out[None]


def check_output(name: str, maps: torch.Tensor, images: Any, source: str = "") -> torch.Tensor:
    """Check a generator's output batch against its input maps; return it clamped to [0, 1].

    Args:
        name: the generator's registry name (named in the error), ``source`` where it comes from.
        maps: the input batch ``(N, C, H, W)``.
        images: what ``generate(maps)`` returned.

    Raises:
        ValueError: one line: ``generator 'NAME' (SOURCE): output ...: <what was wrong>; expected
            a float tensor (N, 3, H, W) in [0, 1]``.
    """
    n, _, h, w = maps.shape
    who = f"generator {name!r}" + (f" ({source})" if source else "")
    want = f"expected a floating torch tensor ({n}, 3, {h}, {w}) with values in [0, 1]"

    def bad(what: str) -> ValueError:
        return GeneratorOutputError(f"{who}: bad output: {what}; {want}; nothing was written")

    if not isinstance(images, torch.Tensor):
        raise bad(f"returned {type(images).__module__}.{type(images).__qualname__}, not a torch.Tensor")
    if not images.is_floating_point():
        raise bad(f"dtype {str(images.dtype).replace('torch.', '')} (not floating point)")
    if images.ndim != 4:
        raise bad(f"shape {tuple(images.shape)} ({images.ndim} dimensions, not 4)")
    if images.shape[1] != 3:
        raise bad(f"shape {tuple(images.shape)} ({images.shape[1]} channels, not 3 RGB)")
    if tuple(images.shape) != (n, 3, h, w):
        raise bad(f"shape {tuple(images.shape)} for {n} maps of {h}x{w}")
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        k = int((~finite).sum())
        raise bad(f"{k} NaN/inf value(s)")
    lo, hi = float(images.min()), float(images.max())
    if lo < -RANGE_ATOL or hi > 1 + RANGE_ATOL:
        raise bad(f"values in [{lo:.4g}, {hi:.4g}], outside [0, 1]")
    return images.clamp(0, 1)


class FrozenModule:
    """A built frozen generator, seen by the pipelines like a trained ``GeneratorModule``.

    Attributes:
        name: registry name; ``source``: where it comes from; ``model``: the plugin's object;
        conditioning: gbench's name of its map (``binary-mask``, ``distance-map``, ``contour-map``,
        ``instances``); ``frozen``: True (a ``GeneratorModule`` has no such attribute).
    """

    frozen = True

    def __init__(self, name: str, model: Any, source: str = "") -> None:
        if not callable(getattr(model, "generate", None)):
            raise ValueError(f"generator {name!r}" + (f" ({source})" if source else "")
                             + f": the factory built a {type(model).__qualname__} without a generate(maps) method")
        self.name = name
        self.source = source
        self.model = model
        self.conditioning = conditioning_name(name, getattr(model, "conditioning", None))

    def to(self, device: Any) -> FrozenModule:
        if callable(getattr(self.model, "to", None)):
            self.model.to(device)
        return self

    def eval(self) -> FrozenModule:
        if callable(getattr(self.model, "eval", None)):
            self.model.eval()
        return self

    def condition_map(self, instances: np.ndarray) -> np.ndarray:
        """(H, W) instance map -> (1, H, W) float32 map of this generator's conditioning."""
        if self.conditioning == "instances":
            return _instance_ids(instances)
        return condition(self.conditioning, instances)

    def generate(self, cond: torch.Tensor) -> torch.Tensor:
        """The plugin's ``generate`` on a batch, checked (:func:`check_output`) and clamped to [0, 1]."""
        with torch.no_grad():
            images = self.model.generate(cond)
        return check_output(self.name, cond, images, self.source)

    def __call__(self, cond: torch.Tensor) -> torch.Tensor:
        return self.generate(cond)
