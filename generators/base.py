"""The contracts of the two generator registries (``generators.GENERATORS`` and
``generators.STACK_GENERATORS``), checked when an entry is registered.

* :class:`GeneratorModule`: an *image* generator, a trainable ``nn.Module`` for
  ``gbench.engine.fit`` mapping a conditioning map to an image (pix2pix, Sharp-GAN, mask-paint).
  Tensor conventions at the boundary (STYLE.md section 7): conditioning maps ``cond`` are float
  ``(N, C, H, W)`` in [0, 1]; images are float ``(N, 3, H, W)`` in [0, 1]. A generator that works
  in [-1, 1] (tanh output) converts inside.
* :class:`StackGenerator`: an unconditional *multi-focus stack* generator (MI-GAN): noise ->
  ``(planes, S, S, 3)`` uint8 stacks. It takes no conditioning map and trains in its own phases,
  so it is not a :class:`GeneratorModule` and has its own registry and commands
  (``gbench train-migan``, ``sample-migan``, ``quality-multifocus``).
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any

import numpy as np
import torch
from torch import nn

from gbench.data.conditioning import condition, contour_map

__all__ = ["GeneratorModule", "StackGenerator", "set_requires_grad", "to_unit", "to_signed"]


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

    #: Config fields ``gbench train-gen`` and ``GeneratorModule`` rely on.
    REQUIRED_CONFIG_FIELDS: typing.ClassVar[tuple[str, ...]] = ("conditioning", "image_size", "lr", "init_seed")

    @classmethod
    def check_contract(cls, module_cls: type) -> None:
        """Raise TypeError unless ``module_cls`` implements the contract (called at registration).

        It must override ``generate`` and ``training_step``, and its ``__init__`` must take a
        frozen config dataclass with :data:`REQUIRED_CONFIG_FIELDS`.
        """
        _check_overrides(module_cls, cls, ("generate", "training_step"))
        _check_config(module_cls, cls.REQUIRED_CONFIG_FIELDS)


class StackGenerator(nn.Module):
    """Base class of unconditional multi-focus stack generators (``generators.STACK_GENERATORS``).

    Attributes:
        name: registry name.
        config: the frozen config dataclass the model was built from (with ``image_size`` and
            ``planes``).

    Subclasses implement :meth:`sample`; how they train is their own (MI-GAN: two phases through
    ``gbench.engine.fit``, ``generators.mi_gan_train``).
    """

    name: str = "unnamed"

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def sample(self, n: int, seed: int = 0, batch_size: int = 64) -> np.ndarray:
        """``n`` stacks ``(n, planes, S, S, 3)`` uint8, in eval mode; the same seed gives the same stacks."""
        raise NotImplementedError

    #: Config fields every stack generator has.
    REQUIRED_CONFIG_FIELDS: typing.ClassVar[tuple[str, ...]] = ("image_size", "planes")

    @classmethod
    def check_contract(cls, module_cls: type) -> None:
        """Raise TypeError unless ``module_cls`` overrides ``sample`` and takes a frozen config
        dataclass with :data:`REQUIRED_CONFIG_FIELDS` (called at registration)."""
        _check_overrides(module_cls, cls, ("sample",))
        _check_config(module_cls, cls.REQUIRED_CONFIG_FIELDS)


def _check_overrides(module_cls: type, base: type, methods: tuple[str, ...]) -> None:
    missing = [m for m in methods if getattr(module_cls, m, None) is getattr(base, m, None)]
    if missing:
        raise TypeError(f"{module_cls.__qualname__} does not implement {', '.join(missing)}")


def _check_config(module_cls: type, fields: tuple[str, ...]) -> None:
    """``module_cls.__init__`` takes a frozen config dataclass (its first annotated argument) with ``fields``."""
    try:
        hints = typing.get_type_hints(module_cls.__init__)
    except Exception as exc:  # an annotation that does not resolve
        raise TypeError(f"{module_cls.__qualname__}.__init__: unresolvable annotations ({exc})") from None
    hints.pop("return", None)
    config_cls = next(iter(hints.values()), None)
    for arg in typing.get_args(config_cls) or ():  # ``Config | None``
        if dataclasses.is_dataclass(arg):
            config_cls = arg
    if not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        raise TypeError(f"{module_cls.__qualname__}.__init__ must take a config dataclass as its first argument")
    if not config_cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{config_cls.__qualname__} must be a frozen dataclass")
    names = {f.name for f in dataclasses.fields(config_cls)}
    missing = [f for f in fields if f not in names]
    if missing:
        raise TypeError(f"{config_cls.__qualname__} lacks the config field(s) {', '.join(missing)}")
