"""Image generators: ``create(name, **overrides)``, ``available()``, ``load(checkpoint)``.

Registered names:

* ``gan-binary``: pix2pix (U-Net G + 70x70 PatchGAN D) conditioned on the binary nucleus mask;
* ``gan-dist``: the same network conditioned on the Sharp-GAN distance map;
* ``sharp-gan``: ``gan-dist`` plus the sharpness loss (Butte et al., Eq. 4-5);
* ``mask-paint``: the Table 1 floor: the binary mask painted with the training split's mean
  nucleus and background colours, no learning;
* ``dummy``: a one-convolution stand-in for fast tests.

Entries are ``"module:factory"`` strings, imported on first use so ``gbench --help`` stays fast.
A factory takes keyword overrides of its config and returns a :class:`generators.base.GeneratorModule`.
Adding a generator is one module plus one line below (see ``generators/template.py``).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gbench  # noqa: F401  (sets OMP_WAIT_POLICY before torch is imported)
from gbench.core.errors import DataError
from gbench.core.registry import Registry
from gbench.engine import load_checkpoint

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from generators.base import GeneratorModule

__all__ = ["GENERATORS", "create", "available", "load", "factory"]

GENERATORS: Registry[str] = Registry("generator")
GENERATORS.register("gan-binary", "generators.pix2pix:gan_binary")
GENERATORS.register("gan-dist", "generators.pix2pix:gan_dist")
GENERATORS.register("sharp-gan", "generators.sharp_gan:sharp_gan")
GENERATORS.register("dummy", "generators.dummy:dummy")
GENERATORS.register("mi-gan", "generators.mi_gan:create")
GENERATORS.register("mask-paint", "generators.mask_paint:mask_paint")


def factory(name: str) -> Any:
    """The factory registered as ``name`` (imported on first use); KeyError with suggestions."""
    entry = GENERATORS.get(name)
    if not isinstance(entry, str):
        return entry
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr)


def create(name: str, **overrides: Any) -> GeneratorModule:
    """Build generator ``name`` with config fields overridden by keyword.

    Args:
        name: a registered name (``available()``).
        **overrides: config fields (``image_size=128``, ``ngf=32``, ``beta=0.5`` ...); an
            unknown field raises ValueError naming the known ones.

    Returns:
        A trainable :class:`generators.base.GeneratorModule` (randomly initialised from the
        config's ``init_seed``).

    Example:
        >>> g = create("sharp-gan", image_size=64, ngf=8, ndf=8)
        >>> g.conditioning
        'distance-map'
    """
    module = factory(name)(**overrides)
    module.name = name
    return module


def available() -> list[str]:
    """Registered generator names, sorted."""
    return GENERATORS.names()


def load(checkpoint: str | Path, name: str | None = None, device: str | torch.device = "cpu") -> GeneratorModule:
    """Rebuild a generator from a checkpoint written by ``gbench train-gen`` (``engine.fit``).

    Args:
        checkpoint: path of ``last.pt``.
        name: expected generator name; a checkpoint of another generator raises ValueError.
        device: where to put the module.

    Returns:
        The module with its trained weights, in eval mode.
    """

    ckpt = load_checkpoint(checkpoint, map_location=device)
    meta = ckpt.get("meta") or {}
    stored = meta.get("generator")
    if stored is None or "config" not in meta:
        raise DataError(checkpoint, "checkpoint has no generator name/config in its meta (not written by train-gen)")
    if name is not None and name != stored:
        raise ValueError(f"{checkpoint}: checkpoint holds generator {stored!r}, not {name!r}")
    module = create(stored, **meta["config"])
    try:
        module.load_state_dict(ckpt["module"])
    except RuntimeError as exc:
        raise DataError(checkpoint, f"weights do not fit generator {stored!r} ({str(exc).splitlines()[0]})") from None
    return module.to(device).eval()
