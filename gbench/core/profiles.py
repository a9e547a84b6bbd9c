"""Named run profiles: ``smoke`` (CI, seconds), ``demo`` (minutes on 2 CPU cores), ``paper``.

A profile is a typed config with one frozen section per component:

=================  ==========================================================================
section            used by
=================  ==========================================================================
``data``           the built-in ``synthetic-he`` tiles (:func:`gbench.data.resolve.resolve_dataset`)
``generator``      the pix2pix-family generators (``train-gen``, reproduce's generator stage)
``segmenters``     one :class:`SegmenterSection` per architecture (``segment``, reproduce's grid;
                   :func:`segmentation.train.config_from_profile`)
``synthesis``      drawing synthetic sets (``synthesize``; the ``S3k``/``S10k`` counts)
``evaluation``     Table 1 quality evaluation (``quality --generator``; crop and batch)
``migan``          MI-GAN (:func:`generators.mi_gan.config_for_profile`,
                   :func:`generators.mi_gan_train.schedule_for`)
=================  ==========================================================================

A missing entry is an error naming the profile and the component (:meth:`Profile.segmenter`),
never a silent fallback to another profile's values. Change a field with
``dataclasses.replace`` (on the section, then on the profile). Commands resolve ``--profile``
once (:func:`get_profile`) and pass the :class:`Profile` down; the few public entry points that
also take a name convert it with :func:`as_profile`. Every result records the profile's name
and seed.

``paper`` holds the papers' own settings: Sharp-GAN trains on 256x256 crops, batch 16, initial
learning rate 1e-4, 500 epochs, random crop / flip / rotation, and draws S3k and S10k (3,000 and
10,000 synthetic images); MI-GAN works on 64x64 cells with 11 focus planes, 1,100 SiHa and 541
cancer cells, the paper's literal architecture.

User profiles: ``--profile my.toml`` (any command) reads a TOML file that extends a built-in
profile and overrides any section or field (:func:`load_profile`)::

    extends = "smoke"            # required: smoke, demo or paper
    name = "smoke-longer"        # optional (default: the file's stem); not a built-in's name
    seeds = [0, 1]

    [segmenters.unet]            # one table per section; segmenters.<arch>, runtime too
    max_steps = 20
    model = { encoder = "resnet34" }   # pairs (model, options, counts) merge key by key

    [synthesis]
    counts = { S3k = 10 }

A field that may be unset (``max_steps``, ``val_every``, the runtime's) takes ``"none"``. Every
key is checked (unknown ones refused, with the nearest known one), every value's type too, then
the profile's own validation runs; errors are one line naming the file and the key.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from gbench.core.errors import DataError
from gbench.core.runtime import Runtime

__all__ = ["Profile", "PROFILES", "get_profile", "as_profile", "load_profile", "ProfileError", "DataSection", "GeneratorSection",
           "SegmenterSection", "SynthesisSection", "EvaluationSection", "MiganSection", "SMOKE", "DEMO", "PAPER"]


class ProfileError(ValueError):
    """A profile lacks an entry a component asks for, or holds an invalid value."""

    def __init__(self, profile: str, component: str, problem: str) -> None:
        super().__init__(f"profile {profile!r}, {component}: {problem}")
        self.profile = profile
        self.component = component


def _positive(profile: str, component: str, section: Any, *names: str) -> None:
    for n in names:
        v = getattr(section, n)
        if v is not None and v <= 0:
            raise ProfileError(profile, component, f"{n} must be positive, got {v}")


def _crop(profile: str, component: str, size: int, attr: str = "image_size") -> None:
    if size <= 0 or size % 32:
        raise ProfileError(profile, component, f"{attr} must be a positive multiple of 32, got {size}")


@dataclass(frozen=True)
class DataSection:
    """The built-in ``synthetic-he`` dataset under this profile.

    Attributes:
        builtin_size: side of the built-in tiles.
        builtin_train: number of built-in training tiles.
        builtin_test: number of built-in test tiles.
    """

    builtin_size: int
    builtin_train: int
    builtin_test: int

    def check(self, profile: str) -> None:
        _positive(profile, "data", self, "builtin_size", "builtin_train", "builtin_test")


@dataclass(frozen=True)
class GeneratorSection:
    """Training of the pix2pix-family generators (``gan-binary``, ``gan-dist``, ``sharp-gan``, ...).

    Attributes:
        image_size: square training crop (pixels, a multiple of 32); also the generator's size.
        batch_size: training batch size.
        lr: initial Adam learning rate.
        epochs: training epochs over the crop stream when ``max_steps`` is None.
        max_steps: optimiser steps per run (None: ``epochs`` decide).
        width: pix2pix generator and discriminator base width (``ngf`` = ``ndf``; pix2pix and the
            paper: 64; smaller profiles shrink it so CPU runs take minutes).
    """

    image_size: int
    batch_size: int
    lr: float
    epochs: int
    max_steps: int | None
    width: int

    def check(self, profile: str) -> None:
        _crop(profile, "generator", self.image_size)
        _positive(profile, "generator", self, "batch_size", "lr", "epochs", "max_steps", "width")


@dataclass(frozen=True)
class SegmenterSection:
    """How one segmentation architecture is built and trained (:class:`segmentation.train.SegmentConfig`).

    Attributes:
        model: options passed to ``segmentation.create`` as ((name, value), ...).
        image_size: training crop side (multiple of 32).
        batch_size: training batch size.
        lr: Adam learning rate.
        epochs: epochs over the training images when ``max_steps`` is None.
        max_steps: optimiser steps (None: ``epochs`` decide).
        val_every: steps between validations (None: one epoch, at most ``VAL_TIMES`` validations).
        patience: validations without improvement before early stopping (0: never).
    """

    model: tuple[tuple[str, Any], ...]
    image_size: int
    batch_size: int
    lr: float
    epochs: int
    max_steps: int | None
    val_every: int | None
    patience: int

    @property
    def model_options(self) -> dict[str, Any]:
        return dict(self.model)

    def check(self, profile: str, arch: str) -> None:
        _crop(profile, f"segmenter {arch!r}", self.image_size)
        _positive(profile, f"segmenter {arch!r}", self, "batch_size", "lr", "epochs", "max_steps", "val_every")
        if self.patience < 0:
            raise ProfileError(profile, f"segmenter {arch!r}", f"patience must be >= 0, got {self.patience}")


@dataclass(frozen=True)
class SynthesisSection:
    """Drawing a synthetic set.

    Attributes:
        counts: how many images each named synthetic set holds under this profile (``S3k`` and
            ``S10k`` keep their names; smaller profiles scale the counts down).
        image_size: side of a drawn image (default of ``synthesize --size``).
        batch_size: generator batch (default of ``synthesize --batch-size``).
    """

    counts: tuple[tuple[str, int], ...]
    image_size: int
    batch_size: int

    def check(self, profile: str) -> None:
        _crop(profile, "synthesis", self.image_size)
        _positive(profile, "synthesis", self, "batch_size")
        for name, n in self.counts:
            if n <= 0:
                raise ProfileError(profile, "synthesis", f"count of {name} must be positive, got {n}")


@dataclass(frozen=True)
class EvaluationSection:
    """Table 1 quality evaluation of a trained generator (:func:`gbench.pipelines.generator_eval.evaluate_generator`).

    Attributes:
        crop: side of the grid crops of the real test tiles fed to the generator and scored.
        batch_size: generator batch during evaluation.
    """

    crop: int
    batch_size: int

    def check(self, profile: str) -> None:
        _crop(profile, "evaluation", self.crop, "crop")
        _positive(profile, "evaluation", self, "batch_size")


@dataclass(frozen=True)
class MiganSection:
    """MI-GAN: data sizes, architecture, optimiser and schedule (see :mod:`generators.mi_gan`).

    Attributes:
        image_size: cell image side (``4 * 2**k``; the paper: 64).
        planes: focus planes per stack (odd: I-5 .. I+5 for 11).
        train_stacks: built-in ``synthetic-cells:siha`` stacks for MI-GAN training.
        cancer_stacks: built-in ``synthetic-cells:cancer`` stacks (the transfer set; the paper:
            541 cancer vs 1,100 SiHa cells, about half).
        lr: Adam learning rate of both phases (``g2_lr`` in ``options`` may set G2's).
        g1_width, d1_width, g2_width, d2_width: network widths (paper: DCGAN's 64/64, 32/16).
        critic_norm: ``batch`` (the paper's), ``layer`` or ``none``.
        options: further :class:`generators.mi_gan.MIGANConfig` fields as ((name, value), ...)
            (``paper``: none, the literal architecture; smaller profiles: the fixes).
        steps_g1: G1 generator iterations (None: ``epochs`` over the x6-augmented set).
        steps_g2: G2 generator iterations (None: as G1).
        transfer_steps_g1, transfer_steps_g2: the step budget of each MI-GAN2 run of the transfer
            experiment (None: as MI-GAN1's).
        batch_size: real items per critic update.
        epochs: epochs over the augmented set when ``steps_g1`` is None.
        n_eval: stacks drawn for evaluation.
    """

    image_size: int
    planes: int
    train_stacks: int
    cancer_stacks: int
    lr: float
    g1_width: int
    d1_width: int
    g2_width: int
    d2_width: int
    critic_norm: str
    options: tuple[tuple[str, Any], ...]
    steps_g1: int | None
    steps_g2: int | None
    transfer_steps_g1: int | None
    transfer_steps_g2: int | None
    batch_size: int
    epochs: int
    n_eval: int

    def check(self, profile: str) -> None:
        _positive(profile, "migan", self, "image_size", "planes", "train_stacks", "cancer_stacks", "lr", "g1_width",
                  "d1_width", "g2_width", "d2_width", "steps_g1", "steps_g2", "transfer_steps_g1",
                  "transfer_steps_g2", "batch_size", "epochs", "n_eval")
        if self.planes % 2 != 1:
            raise ProfileError(profile, "migan", f"planes must be odd (I0 in the middle), got {self.planes}")

    def config_options(self) -> dict[str, Any]:
        """The :class:`generators.mi_gan.MIGANConfig` fields this section sets."""
        return {**{k: getattr(self, k) for k in _MIGAN_OWN}, **dict(self.options)}

    def with_config(self, **overrides: Any) -> MiganSection:
        """This section with :class:`generators.mi_gan.MIGANConfig` fields replaced (``gbench demo mi-gan
        --set``): the fields the section holds itself (image size, planes, lr, widths, critic norm) are
        set there, any other in ``options`` (replacing the profile's value of that key)."""
        own = {k: v for k, v in overrides.items() if k in _MIGAN_OWN}
        options = dict(self.options)
        options.update({k: v for k, v in overrides.items() if k not in _MIGAN_OWN})
        return dataclasses.replace(self, options=tuple(options.items()), **own)


#: The :class:`generators.mi_gan.MIGANConfig` fields a :class:`MiganSection` holds as its own attributes.
_MIGAN_OWN: Final = ("image_size", "planes", "lr", "g1_width", "d1_width", "g2_width", "d2_width", "critic_norm")


@dataclass(frozen=True)
class Profile:
    """A named run config: one section per component, plus run-wide settings.

    Attributes:
        name: profile name recorded with every result.
        data, generator, segmenters, synthesis, evaluation, migan: the sections (module docstring).
            ``segmenters`` holds (architecture, :class:`SegmenterSection`) pairs.
        seeds: default seeds for repeated runs.
        preview_samples: samples drawn on a preview sheet.
        description: one line for ``gbench profiles``.
        runtime: how training executes on the device (:class:`gbench.core.runtime.Runtime`: mixed
            precision, channels-last, data-loading workers, determinism; all auto by default; the
            CLI's ``--amp``, ``--workers`` ... replace it).
    """

    name: str
    data: DataSection
    generator: GeneratorSection
    segmenters: tuple[tuple[str, SegmenterSection], ...]
    synthesis: SynthesisSection
    evaluation: EvaluationSection
    migan: MiganSection
    seeds: tuple[int, ...] = (0,)
    preview_samples: int = 4
    description: str = field(default="", compare=False)
    runtime: Runtime = field(default_factory=Runtime)

    def __post_init__(self) -> None:
        for section in (self.data, self.generator, self.synthesis, self.evaluation, self.migan):
            section.check(self.name)
        for arch, seg in self.segmenters:
            seg.check(self.name, arch)
        if not self.seeds:
            raise ProfileError(self.name, "run", "needs at least one seed")
        if self.preview_samples <= 0:
            raise ProfileError(self.name, "run", f"preview_samples must be positive, got {self.preview_samples}")

    def segmenter(self, arch: str) -> SegmenterSection:
        """The section of segmentation architecture ``arch``; a missing one is a :class:`ProfileError`."""
        found = dict(self.segmenters)
        if arch not in found:
            raise ProfileError(self.name, f"segmenter {arch!r}",
                               f"no section for this architecture (has: {', '.join(found) or 'none'}); "
                               "add one to every profile in gbench/core/profiles.py")
        return found[arch]

    def synthetic_count(self, set_name: str) -> int:
        """Images in the named synthetic set under this profile (``S3k`` -> 3000 for ``paper``)."""
        counts = dict(self.synthesis.counts)
        if set_name not in counts:
            raise ProfileError(self.name, "synthesis", f"no synthetic set {set_name!r} (has: {', '.join(counts)})")
        return counts[set_name]

    def migan_count(self, cell_type: str) -> int:
        """Built-in MI-GAN training stacks of ``cell_type`` (``siha`` or ``cancer``) under this profile."""
        counts = {"siha": self.migan.train_stacks, "cancer": self.migan.cancer_stacks}
        if cell_type not in counts:
            raise ValueError(f"unknown synthetic-cells type {cell_type!r} (known: {', '.join(counts)})")
        return counts[cell_type]

    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain JSON-able values (pairs become mappings)."""
        d = dataclasses.asdict(self)
        d["segmenters"] = {arch: {**dataclasses.asdict(s), "model": dict(s.model)} for arch, s in self.segmenters}
        d["synthesis"]["counts"] = dict(self.synthesis.counts)
        d["migan"]["options"] = dict(self.migan.options)
        return d


# ------------------------------------------------------------------------------------------------
# The profiles. Segmenters: CPU profiles use smaller networks (``paper`` the full ones). The demo
# U-Net keeps resnet18's first four stages (3.1 M parameters instead of 14.3 M; 12 MB of weights)
# with a narrow decoder: on 2 CPU cores a step takes ~0.12 s on 96 px crops. Demo segmenter
# training: chosen so that U-Net R and SegNet R learn on the built-in ``synthetic-he`` within the
# demo's budget (a step costs about 0.25 s on one CPU core for either network). Measured (test PQ
# at 96 px crops, batch 8, lr 1e-3, seeds 0-2): U-Net 0.66-0.72 after 100 steps; SegNet 0.57-0.64
# after 150-160 and 0.61-0.69 after 200, with eval-mode dips on the way that the validation (best
# weights by validation loss) steps over. At the generators' lr 2e-4 SegNet R was still at PQ
# 0.000 after 100 steps; lr 2e-3-3e-3, batch 4 or 64 px crops made SegNet unstable or slower to
# learn.
#
# MI-GAN: ``paper`` uses DCGAN's widths and the paper's batch-normalised critics and literal
# architecture (transposed convs k 6, eleven encoders to 3x4x4, 3-channel 3D ResNet, eleven
# decoders, adversarial losses only); ``smoke`` and ``demo`` use layer norm (GroupNorm, one group),
# which in short CPU runs gave a steadily falling critic loss where batch norm's was noisy
# (Gulrajani et al. also advise against batch norm in a WGAN-GP critic), and the fixes of
# generators/mi_gan.py's "Why the literal reading fails": resize-convolution up-sampling, the
# focus-structured G2 with a 32-channel bottleneck, a paired L1 term for G2 (weight 100, as
# pix2pix), fewer critic updates; ``demo`` also decays the learning rates linearly to 0 over the
# second half of each phase (``lr_decay`` 0.5, as pix2pix): the last iterate of a short WGAN-GP
# run oscillates, and without it KID of ``gbench demo mi-gan`` missed its target at seed 2 (1.42,
# 1.89 x the mean-stack floor) where with it seeds 0-2 gave 0.024-0.080 (README, MI-GAN).
# ``paper`` has no fixed step count: its epochs decide.

SMOKE = Profile(
    name="smoke",
    data=DataSection(builtin_size=64, builtin_train=6, builtin_test=3),
    generator=GeneratorSection(image_size=64, batch_size=2, lr=1e-4, epochs=1, max_steps=4, width=8),
    segmenters=(
        ("unet", SegmenterSection(model=(("encoder", "resnet18"),), image_size=64, batch_size=2, lr=1e-4,
                                  epochs=1, max_steps=4, val_every=None, patience=5)),
        ("segnet", SegmenterSection(model=(("width", 0.125),), image_size=64, batch_size=2, lr=1e-4,
                                    epochs=1, max_steps=4, val_every=None, patience=5)),
    ),
    synthesis=SynthesisSection(counts=(("S3k", 6), ("S10k", 12)), image_size=64, batch_size=2),
    evaluation=EvaluationSection(crop=64, batch_size=2),
    migan=MiganSection(image_size=32, planes=11, train_stacks=8, cancer_stacks=4, lr=1e-4,
                       g1_width=8, d1_width=8, g2_width=4, d2_width=4, critic_norm="layer",
                       options=(("upsample", "resize"), ("g2_arch", "focus"), ("latent_channels", 8),
                                ("resnet_channels", 8), ("g2_l1", 100.0), ("g2_residual", False),
                                ("n_critic", 2), ("g2_n_critic", 1), ("precise_bn", True)),
                       steps_g1=4, steps_g2=4, transfer_steps_g1=3, transfer_steps_g2=2, batch_size=2, epochs=1,
                       n_eval=6),
    preview_samples=2,
    description="CI: tiny shapes, a few steps; seconds on one CPU core",
)
DEMO = Profile(
    name="demo",
    data=DataSection(builtin_size=256, builtin_train=24, builtin_test=8),
    generator=GeneratorSection(image_size=128, batch_size=8, lr=2e-4, epochs=8, max_steps=200, width=16),
    segmenters=(
        ("unet", SegmenterSection(model=(("decoder_channels", (64, 32, 16, 8)), ("encoder", "resnet18"),
                                         ("encoder_depth", 4)),
                                  image_size=96, batch_size=8, lr=1e-3, epochs=8, max_steps=100, val_every=20,
                                  patience=4)),
        ("segnet", SegmenterSection(model=(("width", 0.25),), image_size=96, batch_size=8, lr=1e-3, epochs=8,
                                    max_steps=160, val_every=20, patience=4)),
    ),
    synthesis=SynthesisSection(counts=(("S3k", 96), ("S10k", 320)), image_size=128, batch_size=8),
    evaluation=EvaluationSection(crop=128, batch_size=8),
    migan=MiganSection(image_size=64, planes=11, train_stacks=64, cancer_stacks=32, lr=2e-4,
                       g1_width=16, d1_width=16, g2_width=16, d2_width=8, critic_norm="layer",
                       options=(("upsample", "resize"), ("g2_arch", "focus"), ("latent_channels", 32),
                                ("resnet_channels", 32), ("g2_l1", 100.0), ("g2_residual", False),
                                ("n_critic", 5), ("g2_n_critic", 2), ("g2_lr", 1e-3), ("precise_bn", True),
                                ("lr_decay", 0.5)),
                       steps_g1=800, steps_g2=100, transfer_steps_g1=400, transfer_steps_g2=80, batch_size=8,
                       epochs=8, n_eval=256),
    preview_samples=4,
    description="make demo: under 10 minutes on 2 CPU cores; counts scaled down, names kept; generators "
                "200 steps; segmenters train on 96 px crops at lr 1e-3, U-Net 100 / SegNet 160 steps at "
                "most (Profile.segmenters)",
)
PAPER = Profile(
    name="paper",
    data=DataSection(builtin_size=512, builtin_train=64, builtin_test=16),
    generator=GeneratorSection(image_size=256, batch_size=16, lr=1e-4, epochs=500, max_steps=None, width=64),
    segmenters=(
        ("unet", SegmenterSection(model=(("encoder", "resnet34"),), image_size=256, batch_size=16, lr=1e-4,
                                  epochs=500, max_steps=None, val_every=None, patience=5)),
        ("segnet", SegmenterSection(model=(("width", 1.0),), image_size=256, batch_size=16, lr=1e-4,
                                    epochs=500, max_steps=None, val_every=None, patience=5)),
    ),
    synthesis=SynthesisSection(counts=(("S3k", 3000), ("S10k", 10000)), image_size=256, batch_size=16),
    evaluation=EvaluationSection(crop=256, batch_size=16),
    migan=MiganSection(image_size=64, planes=11, train_stacks=1100, cancer_stacks=541, lr=1e-4,
                       g1_width=64, d1_width=64, g2_width=32, d2_width=16, critic_norm="batch", options=(),
                       steps_g1=None, steps_g2=None, transfer_steps_g1=None, transfer_steps_g2=None,
                       batch_size=16, epochs=500, n_eval=256),
    seeds=(0, 1, 2),
    preview_samples=6,
    description="The papers' settings (Sharp-GAN: 256x256, batch 16, lr 1e-4, 500 epochs; MI-GAN: 64x64, 11 planes); GPU hours",
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SMOKE, DEMO, PAPER)}


def get_profile(name: str) -> Profile:
    """The profile called ``name``, or the user profile in the TOML file ``name`` (:func:`load_profile`);
    raises ValueError naming the known ones. Called once per command."""
    if name in PROFILES:
        return PROFILES[name]
    if str(name).endswith(".toml") or Path(name).is_file():
        return load_profile(name)
    raise ValueError(f"unknown profile {name!r} (known: {', '.join(PROFILES)}, or a .toml file extending one)")


#: The sections a user profile may override, by key.
_SECTIONS: Final = ("data", "generator", "synthesis", "evaluation", "migan", "runtime")
_TOP: Final = ("seeds", "preview_samples", "description")


def _where(key: str) -> str:
    return f"key {key!r}"


def _coerce(path: Path, key: str, hint: Any, value: Any, base: Any = None) -> Any:
    """``value`` (from TOML) as a value of the dataclass field type ``hint``; DataError naming ``key``."""
    from gbench.core.config import type_name

    def bad(what: str) -> DataError:
        return DataError(path, f"{_where(key)}: expected {what}, got {type_name(value)} ({value!r})")

    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:  # X | None
        if value == "none":
            return None
        (inner,) = [a for a in args if a is not type(None)]
        try:
            return _coerce(path, key, inner, value, base)
        except DataError:
            raise bad(f"{getattr(inner, '__name__', inner)} or \"none\"") from None
    if hint is bool:
        if not isinstance(value, bool):
            raise bad("a boolean")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if origin is tuple and args == (int, Ellipsis):
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise bad("an array of integers")
        return tuple(value)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:  # (name, value) pairs: a table, merged
        if not isinstance(value, dict):
            raise bad("a table")
        merged = dict(base or ())
        for k, v in value.items():
            if key.endswith("counts") and (isinstance(v, bool) or not isinstance(v, int)):
                raise DataError(path, f"{_where(f'{key}.{k}')}: expected an integer, got {type_name(v)} ({v!r})")
            merged[k] = _frozen(v)
        return tuple(merged.items())
    raise bad(str(hint))  # pragma: no cover - every field type is handled above


def _frozen(value: Any) -> Any:
    """TOML arrays as tuples (hashable, as the built-in profiles hold them)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _override(path: Path, key: str, obj: Any, table: Any, complete: bool = False) -> Any:
    """Dataclass ``obj`` with the fields of TOML ``table`` replaced (``complete``: ``obj`` is the
    class, and ``table`` must set every field)."""
    from gbench.core.config import type_name, unknown_key

    if not isinstance(table, dict):
        raise DataError(path, f"{_where(key)}: expected a table, got {type_name(table)} ({table!r})")
    cls = obj if complete else type(obj)
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    changes = {}
    for k, v in table.items():
        if k not in fields:
            raise DataError(path, unknown_key(k, fields, f"[{key}]"))
        changes[k] = _coerce(path, f"{key}.{k}", hints[k], v, None if complete else getattr(obj, k))
    if complete:
        missing = [f for f in fields if f not in changes]
        if missing:
            raise DataError(path, f"[{key}] is a new section: it needs every field; missing {', '.join(missing)}")
    try:
        return cls(**changes) if complete else dataclasses.replace(obj, **changes)
    except ValueError as exc:  # a section's own checks (the runtime's, say)
        raise DataError(path, f"[{key}]: {exc}") from None


def load_profile(path: str | Path) -> Profile:
    """A user profile: the TOML file at ``path`` extending a built-in profile (module docstring).

    Raises:
        DataError: ``<file>: ...`` naming the key: no or an unknown ``extends``, an unknown key or
            section, a wrong type, a name taken by a built-in profile, or an invalid value (the
            profile's own checks).

    Example:
        >>> load_profile("my.toml").segmenter("unet").max_steps  # doctest: +SKIP
        20
    """
    from gbench.core.config import read_toml, type_name, unknown_key

    path = Path(path)
    raw = read_toml(path)
    extends = raw.pop("extends", None)
    if extends is None:
        raise DataError(path, f"key 'extends' is missing: name the built-in profile to start from "
                              f"({', '.join(PROFILES)})")
    if extends not in PROFILES:
        raise DataError(path, f"key 'extends': unknown profile {extends!r} (built-in: {', '.join(PROFILES)})")
    base = PROFILES[extends]
    name = raw.pop("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise DataError(path, f"key 'name': expected a non-empty string, got {type_name(name)} ({name!r})")
    if name in PROFILES:
        raise DataError(path, f"key 'name': {name!r} is a built-in profile's name; give yours another "
                              "(results record it, and must not pass for the built-in's)")
    changes: dict[str, Any] = {"name": name}
    hints = typing.get_type_hints(Profile)
    known = [*_SECTIONS, "segmenters", *_TOP, "extends", "name"]
    for key, value in raw.items():
        if key in _SECTIONS:
            changes[key] = _override(path, key, getattr(base, key), value)
        elif key == "segmenters":
            if not isinstance(value, dict):
                raise DataError(path, f"key 'segmenters': expected a table of architectures, got {type_name(value)}")
            segs = dict(base.segmenters)
            for arch, table in value.items():
                segs[arch] = (_override(path, f"segmenters.{arch}", segs[arch], table) if arch in segs
                              else _override(path, f"segmenters.{arch}", SegmenterSection, table, complete=True))
            changes["segmenters"] = tuple(segs.items())
        elif key in _TOP:
            changes[key] = _coerce(path, key, hints[key], value)
        else:
            raise DataError(path, unknown_key(key, known, "a profile"))
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:  # ProfileError and the runtime's checks: the component and field named
        raise DataError(path, str(exc)) from None


def as_profile(profile: Profile | str) -> Profile:
    """``profile`` itself, or the profile of that name: the one conversion, for the public entry
    points that document taking a name (``train_generator``, ``reproduce_sharp_gan``, ...)."""
    return profile if isinstance(profile, Profile) else get_profile(profile)
