"""Named run profiles: ``smoke`` (CI, seconds), ``demo`` (minutes on 2 CPU cores), ``paper``.

A profile is a frozen dataclass; change a field with ``dataclasses.replace``. Every command takes
``--profile`` and ``--seed`` and every result records both.

``paper`` holds the papers' own settings: Sharp-GAN trains on 256x256 crops, batch 16, initial
learning rate 1e-4, 500 epochs, random crop / flip / rotation, and draws S3k and S10k (3,000 and
10,000 synthetic images); MI-GAN works on 64x64 cells with 11 focus planes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Profile", "PROFILES", "get_profile", "SMOKE", "DEMO", "PAPER"]


@dataclass(frozen=True)
class Profile:
    """Sizes and schedule of a run.

    Attributes:
        name: profile name recorded with every result.
        image_size: square crop fed to the generators and segmenters (pixels).
        batch_size: training batch size.
        lr: initial Adam learning rate.
        epochs: training epochs.
        max_steps: optional cap on optimiser steps per training run (None: epochs decide).
        synthetic_counts: how many images each named synthetic set holds under this profile
            (``S3k`` and ``S10k`` keep their names; smaller profiles scale the counts down).
        builtin_size: side of the built-in ``synthetic-he`` tiles.
        builtin_train: number of built-in training tiles.
        builtin_test: number of built-in test tiles.
        migan_size: MI-GAN cell image side.
        focus_planes: MI-GAN focus planes per stack (I-5 .. I+5).
        migan_train: number of built-in ``synthetic-cells:siha`` stacks for MI-GAN training.
        migan_cancer: number of built-in ``synthetic-cells:cancer`` stacks (the transfer set;
            the paper: 541 cancer vs 1,100 SiHa cells, about half).
        segment_max_steps: cap on a segmenter's optimiser steps (None: ``max_steps``).
        gan_width: pix2pix generator and discriminator base width (``ngf`` = ``ndf``; pix2pix and
            the paper: 64; smaller profiles shrink it so CPU runs take minutes).
        seeds: default seeds for repeated runs.
        preview_samples: samples drawn on a preview sheet.
    """

    name: str
    image_size: int
    batch_size: int
    lr: float
    epochs: int
    max_steps: int | None
    synthetic_counts: tuple[tuple[str, int], ...]
    builtin_size: int
    builtin_train: int
    builtin_test: int
    migan_size: int = 64
    focus_planes: int = 11
    migan_train: int = 64
    migan_cancer: int = 32
    gan_width: int = 64
    segment_max_steps: int | None = None
    seeds: tuple[int, ...] = (0,)
    preview_samples: int = 4
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.image_size <= 0 or self.image_size % 32:
            raise ValueError(f"profile {self.name!r}: image_size must be a positive multiple of 32, got {self.image_size}")
        for attr in ("batch_size", "epochs", "gan_width", "builtin_size", "builtin_train", "builtin_test", "migan_size",
                     "focus_planes", "migan_train", "migan_cancer"):
            if getattr(self, attr) <= 0:
                raise ValueError(f"profile {self.name!r}: {attr} must be positive")
        if self.lr <= 0:
            raise ValueError(f"profile {self.name!r}: lr must be positive")
        for attr in ("max_steps", "segment_max_steps"):
            if getattr(self, attr) is not None and getattr(self, attr) <= 0:
                raise ValueError(f"profile {self.name!r}: {attr} must be positive or None")
        if self.focus_planes % 2 != 1:
            raise ValueError(f"profile {self.name!r}: focus_planes must be odd (I0 in the middle)")
        if not self.seeds:
            raise ValueError(f"profile {self.name!r}: needs at least one seed")

    def synthetic_count(self, set_name: str) -> int:
        """Images in the named synthetic set under this profile (``S3k`` -> 3000 for ``paper``)."""
        counts = dict(self.synthetic_counts)
        if set_name not in counts:
            raise KeyError(f"profile {self.name!r} has no synthetic set {set_name!r} (has: {', '.join(counts)})")
        return counts[set_name]

    def migan_count(self, cell_type: str) -> int:
        """Built-in MI-GAN training stacks of ``cell_type`` (``siha`` or ``cancer``) under this profile."""
        counts = {"siha": self.migan_train, "cancer": self.migan_cancer}
        if cell_type not in counts:
            raise ValueError(f"unknown synthetic-cells type {cell_type!r} (known: {', '.join(counts)})")
        return counts[cell_type]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["synthetic_counts"] = dict(self.synthetic_counts)
        return d


SMOKE = Profile(
    name="smoke", image_size=64, batch_size=2, lr=1e-4, epochs=1, max_steps=4,
    synthetic_counts=(("S3k", 6), ("S10k", 12)), builtin_size=64, builtin_train=6, builtin_test=3,
    migan_size=32, migan_train=8, migan_cancer=4, preview_samples=2, gan_width=8,
    description="CI: tiny shapes, a few steps; seconds on one CPU core",
)
DEMO = Profile(
    name="demo", image_size=128, batch_size=8, lr=2e-4, epochs=8, max_steps=200,
    synthetic_counts=(("S3k", 96), ("S10k", 320)), builtin_size=256, builtin_train=24, builtin_test=8,
    migan_size=64, migan_train=64, migan_cancer=32, preview_samples=4, gan_width=16, segment_max_steps=160,
    description="make demo: under 10 minutes on 2 CPU cores; counts scaled down, names kept; generators "
                "200 steps; segmenters train on 96 px crops at lr 1e-3, U-Net 100 / SegNet 160 steps at "
                "most (segmentation.train.TRAIN_DEFAULTS)",
)
PAPER = Profile(
    name="paper", image_size=256, batch_size=16, lr=1e-4, epochs=500, max_steps=None,
    synthetic_counts=(("S3k", 3000), ("S10k", 10000)), builtin_size=512, builtin_train=64, builtin_test=16,
    migan_size=64, migan_train=1100, migan_cancer=541, seeds=(0, 1, 2), preview_samples=6,
    description="The papers' settings (Sharp-GAN: 256x256, batch 16, lr 1e-4, 500 epochs; MI-GAN: 64x64, 11 planes); GPU hours",
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SMOKE, DEMO, PAPER)}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; raises ValueError naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})") from None
