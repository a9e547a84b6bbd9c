"""Every registered generator (both registries) and the how-to template run through their smoke
path: build from the registry, train a couple of steps on CPU, reload, generate. Registering a
generator that breaks the contract is a TypeError at registration."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gbench import generators
from gbench.generators.base import GeneratorModule, StackGenerator
from gbench.generators.mi_gan import load_mi_gan
from gbench.generators.mi_gan_train import train_migan
from gbench.generators.template import template
from gbench.generators.train import train_generator
from tests.conftest import random_disks
from tests.generators.test_train import tiles


def _smoke_image_generator(name: str, out: Path) -> None:
    res = train_generator(name, "tiles", out, profile="smoke", seed=0, steps=2, progress=False, dataset=tiles(2))
    assert res.fit.steps == 2 and res.checkpoint is not None
    module = generators.load(res.checkpoint, name)
    assert isinstance(module, GeneratorModule) and module.name == name
    inst = random_disks((64, 64), n=5, seed=0, rmin=4, rmax=8)
    cond = torch.from_numpy(np.stack([module.condition_map(inst)] * 2))
    fake = module.generate(cond)
    assert fake.shape == (2, 3, 64, 64) and torch.isfinite(fake).all()
    assert float(fake.min()) >= 0.0 and float(fake.max()) <= 1.0
    torch.testing.assert_close(fake[0], fake[1])  # eval mode: an image depends on its own map only


@pytest.mark.parametrize("name", generators.available())
def test_every_registered_generator_trains_reloads_and_generates(name: str, tmp_path: Path) -> None:
    _smoke_image_generator(name, tmp_path)


def test_the_template_generator_registers_and_runs(tmp_path: Path) -> None:
    generators.GENERATORS.register("template-test", template)
    try:
        _smoke_image_generator("template-test", tmp_path)
    finally:
        generators.GENERATORS.unregister("template-test")


#: The smoke training of each stack generator (they train in their own phases, not through one
#: ``training_step``). A stack generator registered without an entry here fails the test below.
STACK_SMOKE: dict[str, Any] = {
    "mi-gan": lambda out: load_mi_gan(train_migan("synthetic-cells:siha", out, profile="smoke", seed=0, steps=1,
                                                  n_train=2, progress=False).model_path)[0],
}


@pytest.mark.parametrize("name", generators.available_stacks())
def test_every_registered_stack_generator_trains_and_samples(name: str, tmp_path: Path) -> None:
    assert name in STACK_SMOKE, f"add the smoke training of stack generator {name!r} to STACK_SMOKE"
    model = STACK_SMOKE[name](tmp_path)
    assert isinstance(model, StackGenerator)
    a = model.sample(2, seed=3)
    s, p = model.config.image_size, model.config.planes
    assert a.shape == (2, p, s, s, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, model.sample(2, seed=3))


@dataclass(frozen=True)
class _NoSeedConfig:
    conditioning: str = "distance-map"
    image_size: int = 64
    lr: float = 1e-3


class _NoSeed(GeneratorModule):
    def __init__(self, config: _NoSeedConfig) -> None:
        super().__init__(config)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        return {}

    def generate(self, cond: torch.Tensor) -> torch.Tensor:
        return cond.repeat(1, 3, 1, 1)


class _NoGenerate(GeneratorModule):
    def __init__(self, config: Any) -> None:
        super().__init__(config)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        return {}


def _no_seed(**overrides: Any) -> _NoSeed:
    return _NoSeed(_NoSeedConfig(**overrides))


def _no_generate(**overrides: Any) -> _NoGenerate:
    return _NoGenerate(dataclasses.make_dataclass("C", ["x"], frozen=True)(1))


def _not_annotated(**overrides: Any):  # noqa: ANN202
    return template(**overrides)


def test_registration_checks_the_generator_contract() -> None:
    with pytest.raises(TypeError, match="'bad': _NoSeedConfig lacks the config field.s. init_seed"):
        generators.GENERATORS.register("bad", _no_seed)
    with pytest.raises(TypeError, match="'bad': _NoGenerate does not implement generate"):
        generators.GENERATORS.register("bad", _no_generate)
    with pytest.raises(TypeError, match="'bad': .* is not a GeneratorModule factory"):
        generators.GENERATORS.register("bad", _not_annotated)
    with pytest.raises(TypeError, match="'bad': .* is not a StackGenerator factory"):
        generators.STACK_GENERATORS.register("bad", template)  # an image generator is not a stack generator
    assert "bad" not in generators.GENERATORS and "bad" not in generators.STACK_GENERATORS
    with pytest.raises(KeyError, match="'mi-gan' is a stack generator"):
        generators.create("mi-gan")
