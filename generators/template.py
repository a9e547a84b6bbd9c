"""How to add a generator: copy this file to ``generators/<name>.py`` and fill it in.

1. A frozen config dataclass. Keep ``conditioning``, ``image_size``, ``lr`` and ``init_seed``:
   ``gbench train-gen`` sets the last three from the profile and seed, and
   ``GeneratorModule.condition_map`` reads ``conditioning`` (a name of
   ``gbench.data.conditioning.CONDITIONINGS``). Validate in ``__post_init__`` with ValueError.
2. A :class:`generators.base.GeneratorModule` subclass that
   * builds its networks (as registered submodules: they are what ``state_dict`` saves) with
     weights drawn from ``torch.Generator().manual_seed(config.init_seed)``,
   * owns its optimisers in ``self.optimizers`` (a dict; ``engine.fit`` checkpoints them),
   * implements ``training_step(batch, step) -> dict[str, float]`` doing its own
     ``zero_grad`` / ``backward`` / ``step``. ``batch`` is the collated output of
     ``train_item`` (override it for other inputs, e.g. focus stacks): by default ``cond``
     (N, C, H, W), ``image`` (N, 3, H, W) in [0, 1] and ``contour`` (N, 1, H, W),
   * implements ``generate(cond) -> images in [0, 1]`` in eval mode under ``no_grad``,
   * implements ``wrap_ddp(wrap)`` if it should run under torchrun: store ``wrap(net)`` for every
     network ``training_step`` calls, outside the registered submodules
     (``self.__dict__["_g_train"] = wrap(self.G)``) so state_dict keys do not change.
3. A factory ``def my_gan(**overrides) -> MyModule`` that rejects unknown options. Keep the
   return annotation: the registry reads the contract from it.
4. In ``generators/__init__.py``, the module's name in the ``from generators import ...`` line
   and one registration line::

       GENERATORS.register("my-gan", my_gan.my_gan)

   Registration checks the contract (:meth:`generators.base.GeneratorModule.check_contract`):
   a factory not annotated to return a ``GeneratorModule`` subclass, a module without
   ``generate`` or ``training_step``, or a config without ``conditioning``, ``image_size``,
   ``lr`` and ``init_seed`` is a TypeError at import.
5. Nothing else: ``tests/generators/test_registered.py`` runs every registered generator through
   its smoke path (train a couple of steps on CPU, reload, generate). Add tests of your own in
   ``tests/generators/`` for what is particular to it (shapes, losses).

A multi-focus *stack* generator (noise -> focus stack, like MI-GAN) implements
:class:`generators.base.StackGenerator` instead and registers in ``STACK_GENERATORS``.

Below: a complete, working (but deliberately trivial) example, not registered.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gbench.generators.base import GeneratorModule, to_signed, to_unit

__all__ = ["TemplateConfig", "TemplateModule", "template"]


@dataclass(frozen=True)
class TemplateConfig:
    conditioning: Literal["binary-mask", "distance-map"] = "distance-map"
    image_size: int = 64
    width: int = 16
    lr: float = 1e-3
    init_seed: int = 0

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise ValueError(f"width must be positive, got {self.width}")


class TemplateModule(GeneratorModule):
    """Two convolutions trained with L1: replace with your networks and losses."""

    def __init__(self, config: TemplateConfig) -> None:
        super().__init__(config)
        self.G = nn.Sequential(nn.Conv2d(1, config.width, 3, padding=1), nn.ReLU(),
                               nn.Conv2d(config.width, 3, 3, padding=1), nn.Tanh())
        gen = torch.Generator().manual_seed(config.init_seed)
        for m in self.G.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02, generator=gen)
                nn.init.zeros_(m.bias)
        self.optimizers = {"G": torch.optim.Adam(self.G.parameters(), lr=config.lr)}
        self.__dict__["_g_train"] = self.G

    def wrap_ddp(self, wrap: Any) -> None:
        self.__dict__["_g_train"] = wrap(self.G)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        opt = self.optimizers["G"]
        opt.zero_grad(set_to_none=True)
        fake = self._g_train(to_signed(batch["cond"]))
        loss = F.l1_loss(fake, to_signed(batch["image"]))
        loss.backward()
        opt.step()
        return {"l1": loss.item()}

    @torch.no_grad()
    def generate(self, cond: torch.Tensor) -> torch.Tensor:
        was = self.G.training
        self.G.eval()
        try:
            return to_unit(self.G(to_signed(cond))).clamp_(0, 1)
        finally:
            self.G.train(was)


def template(**overrides: Any) -> TemplateModule:
    known = {f.name for f in dataclasses.fields(TemplateConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"unknown generator option(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
    return TemplateModule(TemplateConfig(**overrides))
