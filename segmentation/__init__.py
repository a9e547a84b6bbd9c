"""Nucleus segmenters for the Sharp-GAN Table 2 protocol: ``unet`` (smp) and ``segnet``.

``create(name, **overrides)`` builds a network from its registered frozen config with fields
replaced by ``overrides`` (``create("unet", encoder="resnet18", classes=3)``,
``create("segnet", width=0.25)``); ``available()`` lists the names.

:data:`SEGMENTERS` holds one :class:`SegmenterEntry` per architecture; its contract is checked at
registration (a frozen config dataclass with ``in_channels`` and ``classes``, a builder). Adding an
architecture is one module (copy ``segmentation/template.py``), one line in
:func:`_register_builtins` and one ``SegmenterSection`` per profile in ``gbench/core/profiles.py``
(a profile without one is an error naming it, never a silent fallback).

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
from gbench.segmentation.segnet import SegNet, SegNetConfig
from gbench.segmentation.unet import UNetConfig, build_unet

__all__ = ["SEGMENTERS", "SegmenterEntry", "create", "available", "config_for", "label", "profile_section"]


#: Config fields ``segmentation.train`` relies on (it sets ``classes`` from the training target).
REQUIRED_CONFIG_FIELDS: tuple[str, ...] = ("in_channels", "classes")


@dataclass(frozen=True)
class SegmenterEntry:
    """A registered segmenter (the contract of :data:`SEGMENTERS`, checked when it is built).

    Attributes:
        config_cls: a frozen dataclass with :data:`REQUIRED_CONFIG_FIELDS` (every field with a default).
        build: ``config -> nn.Module`` mapping ``(N, in_channels, H, W)`` float images in [0, 1]
            (``H``, ``W`` multiples of 32) to ``(N, classes, H, W)`` logits.
        description: one line for listings.
        label: display name in tables (``U-Net``); default: the registry name.
        like: for a plugin's architecture, which no profile in ``gbench/core/profiles.py`` has a
            section for: the built-in architecture (``segnet``, ``unet``) whose section of the
            profile (crop, batch, lr, schedule; not its model options) it trains with
            (:func:`profile_section`). Empty: the profile must have its own section.
    """

    config_cls: type
    build: Callable[[Any], nn.Module]
    description: str = ""
    label: str = ""
    like: str = ""

    def __post_init__(self) -> None:
        cls = self.config_cls
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)
                and cls.__dataclass_params__.frozen):  # type: ignore[attr-defined]
            raise TypeError(f"segmenter config {cls!r} must be a frozen dataclass")
        missing = [f for f in REQUIRED_CONFIG_FIELDS if f not in {x.name for x in dataclasses.fields(cls)}]
        if missing:
            raise TypeError(f"segmenter config {cls.__qualname__} lacks the field(s) {', '.join(missing)}")
        if not callable(self.build):
            raise TypeError(f"segmenter builder {self.build!r} is not callable")


SEGMENTERS: Registry[SegmenterEntry] = Registry("segmenter", base=SegmenterEntry, group="gbench.segmenters")


def _register_builtins() -> None:
    SEGMENTERS.register("unet", SegmenterEntry(UNetConfig, build_unet, "smp U-Net, encoder option, random init",
                                               label="U-Net"))
    SEGMENTERS.register("segnet", SegmenterEntry(SegNetConfig, SegNet, "SegNet, VGG16-BN encoder, index unpooling",
                                                 label="SegNet"))


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


def profile_section(profile: Any, arch: str) -> Any:
    """The profile's training section for ``arch`` (:meth:`gbench.core.profiles.Profile.segmenter`);
    for a registered architecture the profile lacks whose entry names ``like``, that architecture's
    section without its model options. Otherwise the profile's ProfileError."""
    if arch not in dict(profile.segmenters) and arch in SEGMENTERS and SEGMENTERS.get(arch).like:
        like = SEGMENTERS.get(arch).like
        return dataclasses.replace(profile.segmenter(like), model=())
    return profile.segmenter(arch)


def label(name: str) -> str:
    """Display name of segmenter ``name`` (``unet`` -> ``U-Net``); an unregistered name is itself."""
    return (SEGMENTERS.get(name).label or name) if name in SEGMENTERS else name
