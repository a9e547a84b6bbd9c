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
from gbench.generators.frozen import FrozenEntry, FrozenModule, frozen_factory_class, is_frozen_class

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["GENERATORS", "STACK_GENERATORS", "create", "available", "load", "factory", "create_stack",
           "available_stacks", "is_frozen", "build_frozen", "FrozenModule"]


def _generator_entry(name: str, obj: Any) -> Any:
    """The contract of :data:`GENERATORS`: a trainable ``GeneratorModule`` factory (checked as
    before), a frozen generator (a :class:`FrozenEntry`, a class with ``generate``, or a factory
    annotated to return one; stored as a :class:`FrozenEntry`), or a ``"module:factory"`` string
    (resolved and checked on first use)."""
    if isinstance(obj, (str, FrozenEntry)):
        return obj
    cls = frozen_factory_class(obj)
    if cls is not None and not issubclass(cls, GeneratorModule) and is_frozen_class(cls):
        return FrozenEntry(obj)
    try:
        GENERATORS.check_entry(name, obj)
    except TypeError as exc:
        if "is not a GeneratorModule" not in str(exc):
            raise
        raise TypeError(f"{exc}, nor a FrozenGenerator factory (annotate its return type with a class that has "
                        f"generate(maps), or register it with gbench.api.register_generator(name, factory, "
                        f"frozen=True))") from None
    return obj


GENERATORS: Registry[Any] = Registry("generator", base=GeneratorModule, group="gbench.generators",
                                     adapt=_generator_entry)
GENERATORS.register("gan-binary", pix2pix.gan_binary)
GENERATORS.register("gan-dist", pix2pix.gan_dist)
GENERATORS.register("sharp-gan", sharp_gan.sharp_gan)
GENERATORS.register("dummy", dummy.dummy)
GENERATORS.register("mask-paint", mask_paint.mask_paint)

STACK_GENERATORS: Registry[Any] = Registry("stack generator", base=StackGenerator, group="gbench.stack_generators")
STACK_GENERATORS.register("mi-gan", mi_gan.create)


def factory(name: str) -> Any:
    """The factory registered as ``name``; KeyError with suggestions.

    An entry may also be a ``"module:factory"`` string (imported and checked against the
    contract here, on first use; tests register throw-away generators this way).
    """
    if name not in GENERATORS and name in STACK_GENERATORS:
        raise KeyError(f"{name!r} is a stack generator (multi-focus stacks from noise, no conditioning map), not an "
                       f"image generator: use gbench train-mi-gan / sample-mi-gan / quality-multifocus")
    entry = _entry(name)
    if isinstance(entry, FrozenEntry):
        raise ValueError(f"generator {name!r} ({GENERATORS.source(name)}) is a frozen, pretrained generator: gbench "
                         "does not build or train it from a config (score it with quality --generator, draw a set "
                         "with synthesize, or list it in reproduce --generators)")
    return entry


def _entry(name: str) -> Any:
    """The stored entry of ``name``, a ``"module:factory"`` string resolved (and checked) first."""
    entry = GENERATORS.get(name)
    if not isinstance(entry, str):
        return entry
    module, _, attr = entry.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"generator {name!r}: cannot import {entry!r} ({type(exc).__name__}: {exc})") from None
    return _generator_entry(name, obj)


def is_frozen(name: str) -> bool:
    """Whether generator ``name`` is a frozen, pretrained generator (not trained by gbench)."""
    return isinstance(_entry(name), FrozenEntry)


def build_frozen(name: str, checkpoint: str | Path | None = None, device: str | torch.device = "cpu",
                 **options: Any) -> FrozenModule:
    """Build frozen generator ``name`` with its factory (``factory(checkpoint, **options)``), on ``device``,
    in eval mode, wrapped so that every output batch is checked
    (:func:`gbench.generators.frozen.check_output`).

    Raises:
        ValueError: ``name`` is not frozen, or its factory failed (one line naming the plugin and the error).
    """
    entry = _entry(name)
    if not isinstance(entry, FrozenEntry):
        raise ValueError(f"generator {name!r} is trained by gbench (train-gen), not a frozen generator")
    source = GENERATORS.source(name)
    ckpt = None if checkpoint is None else str(checkpoint)
    if ckpt is not None and not Path(ckpt).exists():
        raise DataError(ckpt, f"checkpoint of generator {name!r}: no such file")
    try:
        model = entry.factory(checkpoint=ckpt, **options)
    except Exception as exc:  # the plugin's own code: one line naming it
        first = (str(exc).strip().splitlines() or ["(no message)"])[0]
        raise ValueError(f"generator {name!r} ({source}) could not be built"
                         f"{f' from {ckpt}' if ckpt else ''}: {type(exc).__name__}: {first}") from None
    return FrozenModule(name, model, source).to(device).eval()


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
    module = factory(name)(**overrides)  # a frozen generator: ValueError (it is not built from a config)
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


def load(checkpoint: str | Path | None, name: str | None = None,
         device: str | torch.device = "cpu") -> GeneratorModule | FrozenModule:
    """Rebuild a generator from a checkpoint written by ``gbench train-gen`` (``engine.fit``), or
    build a frozen generator from its own checkpoint (:func:`build_frozen`).

    Args:
        checkpoint: path of ``last.pt``; for a frozen generator its own weights file in its own
            format (None: the plugin's default weights).
        name: expected generator name; a checkpoint of another generator raises ValueError.
        device: where to put the module.

    Returns:
        The module with its trained weights, in eval mode (a :class:`FrozenModule` for a frozen
        generator: same ``conditioning``, ``condition_map`` and ``generate``, outputs checked).
    """
    if name is not None and is_frozen(name):
        return build_frozen(name, checkpoint, device)
    if checkpoint is None:
        raise ValueError(f"generator {name!r} needs --checkpoint (checkpoints/last.pt written by gbench train-gen)")

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
