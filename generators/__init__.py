"""Image generators: ``create(name, **overrides)``, ``available()``, ``load(checkpoint)``; and
stack generators: ``create_stack(name, **overrides)``, ``available_stacks()``.

Two registries, one contract each (``generators/base.py``), checked when an entry is registered
(:class:`gbench.core.registry.Registry` with a base class: a factory's return annotation must
name a subclass that implements the contract, else TypeError at import):

:data:`GENERATORS` (:class:`generators.base.GeneratorModule`: conditioning map -> image; trained by
``gbench train-gen``, drawn by ``gbench synthesize``, scored by ``gbench quality --generator``):

* ``gan-binary``: pix2pix (U-Net G + 70x70 PatchGAN D) conditioned on the binary nucleus mask;
* ``gan-dist``: the same network conditioned on the Sharp-GAN distance map;
* ``sharp-gan``: ``gan-dist`` plus the sharpness loss (Butte et al., Eq. 4-5);
* ``mask-paint``: the Table 1 floor: the binary mask painted with the training split's mean
  nucleus and background colours, no learning;
* ``dummy``: a one-convolution stand-in for fast tests.

:data:`STACK_GENERATORS` (:class:`generators.base.StackGenerator`: noise -> multi-focus stack; no
conditioning map, so not a ``GeneratorModule``; trained by ``gbench train-migan``, drawn by
``gbench sample-migan``, scored by ``gbench quality-multifocus``):

* ``mi-gan``: MI-GAN (Morooka et al. 2019), ``generators/mi_gan.py``.

A factory takes keyword overrides of its config and returns the module. Adding a generator is
one module, its name in the ``from generators import`` line and one registration line below (see
``generators/template.py`` and the README's "Adding a generator"). The CLI imports this package only inside its commands, so ``gbench --help`` stays
fast although the modules below are imported here.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gbench  # noqa: F401  (sets OMP_WAIT_POLICY before torch is imported)
from gbench.core.errors import DataError
from gbench.core.registry import Registry
from gbench.engine import load_checkpoint
from gbench.generators import dummy, mask_paint, mi_gan, pix2pix, sharp_gan
from gbench.generators.base import GeneratorModule, StackGenerator

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["GENERATORS", "STACK_GENERATORS", "create", "available", "load", "factory", "create_stack",
           "available_stacks"]

GENERATORS: Registry[Any] = Registry("generator", base=GeneratorModule)
GENERATORS.register("gan-binary", pix2pix.gan_binary)
GENERATORS.register("gan-dist", pix2pix.gan_dist)
GENERATORS.register("sharp-gan", sharp_gan.sharp_gan)
GENERATORS.register("dummy", dummy.dummy)
GENERATORS.register("mask-paint", mask_paint.mask_paint)

STACK_GENERATORS: Registry[Any] = Registry("stack generator", base=StackGenerator)
STACK_GENERATORS.register("mi-gan", mi_gan.create)


def factory(name: str) -> Any:
    """The factory registered as ``name``; KeyError with suggestions.

    An entry may also be a ``"module:factory"`` string (imported and checked against the
    contract here, on first use; tests register throw-away generators this way).
    """
    if name not in GENERATORS and name in STACK_GENERATORS:
        raise KeyError(f"{name!r} is a stack generator (multi-focus stacks from noise, no conditioning map), not an "
                       f"image generator: use gbench train-migan / sample-migan / quality-multifocus")
    entry = GENERATORS.get(name)
    if not isinstance(entry, str):
        return entry
    module, _, attr = entry.partition(":")
    obj = getattr(importlib.import_module(module), attr)
    GENERATORS.check_entry(name, obj)
    return obj


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
    """Registered (image) generator names, sorted."""
    return GENERATORS.names()


def create_stack(name: str, **overrides: Any) -> StackGenerator:
    """Build stack generator ``name`` (``seed`` and config fields by keyword; unknown fields: ValueError).

    Example:
        >>> g = create_stack("mi-gan", image_size=32, g1_width=4, d1_width=4, g2_width=4, d2_width=2)
        >>> g.sample(1).shape
        (1, 11, 32, 32, 3)
    """
    module = STACK_GENERATORS.get(name)(**overrides)
    module.name = name
    return module


def available_stacks() -> list[str]:
    """Registered stack generator names, sorted."""
    return STACK_GENERATORS.names()


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
