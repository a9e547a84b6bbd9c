"""Nucleus segmenters for the Sharp-GAN Table 2 protocol: ``unet`` (smp) and ``segnet``.

``create(name, **overrides)`` builds a network from its registered frozen config with fields
replaced by ``overrides`` (``create("unet", encoder="resnet18", classes=3)``,
``create("segnet", width=0.25)``); ``available()`` lists the names.

Example:
    >>> import segmentation
    >>> net = segmentation.create("segnet", width=0.125)
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

import gbench  # noqa: F401  (sets OMP_WAIT_POLICY before torch is imported)
from gbench.core.registry import Registry
from segmentation.segnet import SegNet, SegNetConfig
from segmentation.unet import UNetConfig, build_unet

__all__ = ["SEGMENTERS", "SegmenterEntry", "create", "available", "config_for"]


@dataclass(frozen=True)
class SegmenterEntry:
    """A registered segmenter: its config class and a builder ``config -> nn.Module``."""

    config_cls: type
    build: Callable[[Any], nn.Module]
    description: str = ""


SEGMENTERS: Registry[SegmenterEntry] = Registry("segmenter")


def _register_builtins() -> None:
    SEGMENTERS.register("unet", SegmenterEntry(UNetConfig, build_unet, "smp U-Net, encoder option, random init"))
    SEGMENTERS.register("segnet", SegmenterEntry(SegNetConfig, SegNet, "SegNet, VGG16-BN encoder, index unpooling"))


_register_builtins()


def config_for(name: str, **overrides: Any) -> Any:
    """The frozen config of segmenter ``name`` with ``overrides`` applied.

    Raises:
        KeyError: unknown segmenter (with suggestions).
        ValueError: an override that is not a field of the config, or an invalid value.
    """
    entry = SEGMENTERS.get(name)
    fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"segmenter {name!r} has no option(s) {', '.join(unknown)} (options: {', '.join(sorted(fields))})")
    return entry.config_cls(**overrides)


def create(name: str, **overrides: Any) -> nn.Module:
    """Build segmenter ``name`` with its default config and ``overrides`` applied."""
    entry = SEGMENTERS.get(name)
    return entry.build(config_for(name, **overrides))


def available() -> list[str]:
    """Registered segmenter names."""
    return SEGMENTERS.names()
