"""The public plugin API: bring your own generator, segmenter, feature extractor or dataset.

gbench reaches every component through a registry; a plugin registers into the same registries
through the functions below, from its own package (entry points) or an unpackaged file
(``--plugin``). Importing this module is cheap (no torch): the registries are imported when a
function is called, and the contract classes when first named (``gbench.api.FrozenGenerator``).

Registering
    ``register_generator(name, factory, *, frozen=None)``
        An image generator. ``factory`` is either

        * a **frozen generator** factory (a model trained elsewhere): a class, or a function,
          ``factory(checkpoint: str | None = None, **options) -> FrozenGenerator``; it loads its
          own weights from ``checkpoint`` (``--checkpoint PATH``) in any format (``None``: its
          default weights). gbench recognises it by the class having ``generate`` (or the
          function's return annotation naming such a class); pass ``frozen=True`` for an
          unannotated function. Or
        * a **trainable** :class:`GeneratorModule` factory ``factory(**config_fields)`` (what
          ``gbench train-gen`` trains; see ``generators/template.py``).
    ``register_stack_generator(name, factory)``
        A multi-focus stack generator (:class:`StackGenerator` factory, ``gbench train-mi-gan``).
    ``register_segmenter(name, entry)``
        A :class:`SegmenterEntry` (frozen config dataclass with ``in_channels`` and ``classes``, a
        builder ``config -> nn.Module`` mapping ``(N, in_channels, H, W)`` images in [0, 1] to
        ``(N, classes, H, W)`` logits; ``like="segnet"`` trains it with the profile's SegNet
        schedule, since the built-in profiles have no section for it).
    ``register_extractor(name, factory)``
        A feature extractor for FID/KID/precision/recall (``quality --extractor NAME``):
        ``factory(weights: Path | None, *, seed: int, device) -> FeatureExtractor`` (an
        ``nn.Module`` subclass of :class:`FeatureExtractor`: ``forward`` maps uint8 ``(N, 3, H, W)``
        to float ``(N, D)``; set ``num_features`` and ``resize``, and ``note``).
    ``register_dataset(name, factory)``
        A labelled dataset (``--data NAME``): ``factory(split: str) -> Dataset`` with split
        ``train``, ``test`` or ``all`` (:class:`Dataset` of :class:`Sample`: ``image`` uint8
        ``(H, W, 3)``, ``instances`` int32 ``(H, W)``, 0 = background).

    Metrics are not pluggable: their registry (``gbench.core.metric_specs.METRICS``) is a fixed
    table that records, tables and claims read directions and labels from.

    Names are lowercase kebab-case. A name already registered is refused, naming both sources
    (ValueError); ``gbench list generators|segmenters|extractors|datasets|metrics|profiles`` shows
    every name and where it comes from (``built-in``, ``<distribution> <version>`` or the plugin
    file).

The frozen generator protocol (:class:`FrozenGenerator`)
    ``conditioning``: ``"binary"``, ``"distance"``, ``"contour"`` or ``"instances"``.
    ``generate(maps) -> images`` for one batch: ``maps`` float32 ``(N, 1, H, W)`` (binary mask;
    per-nucleus distance map scaled to [0, 1]; contour mask; or, for ``instances``, the instance ids
    as floats, 0 background, 1..K) -> ``images`` a floating torch tensor ``(N, 3, H, W)`` in [0, 1].
    Every batch is checked (shape, channels, dtype, NaN/inf, range): a bad one is refused in one
    line naming the plugin, before anything is written. Such a generator is accepted by
    ``gbench quality --generator NAME [--checkpoint PATH] --data D``, ``gbench synthesize NAME
    [--checkpoint PATH]`` and ``gbench reproduce --generator gan-dist,NAME`` (a Table 1 row beside
    the built-in GANs, with the same floor and claims); ``gbench train-gen`` refuses it.

The trainable contract (:class:`GeneratorModule`)
    An ``nn.Module`` built from a frozen config dataclass with ``conditioning``, ``image_size``,
    ``lr`` and ``init_seed``; it owns its optimisers, implements ``training_step(batch) -> dict``
    (batch: ``cond``, ``image``, ``contour``) and ``generate(cond) -> image`` (float ``(N, 3, H, W)``
    in [0, 1]); ``gbench.engine.fit`` trains it (``generators/template.py``).

Entry-point groups (in the plugin's ``pyproject.toml``)
    ``gbench.generators``, ``gbench.stack_generators``, ``gbench.segmenters``, ``gbench.extractors``,
    ``gbench.datasets``. An entry point's object is registered under the entry point's name; or,
    when it names a module, importing that module registers what it holds (it calls the functions
    here). Groups are read on a registry's first lookup, never at ``gbench --help``::

        [project.entry-points."gbench.generators"]
        my-gen = "my_pkg.gbench_plugin:MyGenerator"
        [project.entry-points."gbench.segmenters"]
        my-seg = "my_pkg.gbench_plugin:SEGMENTER"

    A plugin whose import fails is named in one warning (entry point and error) and skipped;
    the rest of gbench works.

Unpackaged code: ``--plugin``
    ``gbench --plugin my_plugin.py quality ...`` (repeatable; a module name works too) imports the
    file first; it registers through this module. ``GBENCH_PLUGINS`` (``os.pathsep``-separated)
    does the same on the first registry lookup. A ``--plugin`` that fails to import is an error
    (one line, exit 2); one from ``GBENCH_PLUGINS`` is a warning.

Example (``my_plugin.py``)::

    import torch
    from gbench.api import FrozenGenerator, register_generator

    class Painter(FrozenGenerator):
        conditioning = "binary"

        def __init__(self, checkpoint=None, colour=(0.6, 0.3, 0.6)):
            self.colour = torch.tensor(colour).view(1, 3, 1, 1)

        def generate(self, maps):
            return 0.9 - maps * (0.9 - self.colour)

    register_generator("painter", Painter)

    # gbench --plugin my_plugin.py quality --generator painter --data synthetic-he --profile smoke
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from gbench.data.types import Dataset, Sample
    from gbench.generators.base import GeneratorModule, StackGenerator
    from gbench.generators.frozen import FrozenGenerator
    from gbench.metrics.features import FeatureExtractor
    from gbench.segmentation import SegmenterEntry

__all__ = ["register_generator", "register_stack_generator", "register_segmenter", "register_extractor",
           "register_dataset", "load_plugin", "FrozenGenerator", "GeneratorModule", "StackGenerator",
           "SegmenterEntry", "FeatureExtractor", "Dataset", "Sample", "CONDITIONINGS", "ENTRY_POINT_GROUPS"]

#: What a frozen generator may declare as its ``conditioning``.
CONDITIONINGS: tuple[str, ...] = ("binary", "distance", "contour", "instances")
#: The entry-point groups gbench reads.
ENTRY_POINT_GROUPS: tuple[str, ...] = ("gbench.generators", "gbench.stack_generators", "gbench.segmenters",
                                       "gbench.extractors", "gbench.datasets")

_LAZY = {
    "FrozenGenerator": "gbench.generators.frozen",
    "GeneratorModule": "gbench.generators.base",
    "StackGenerator": "gbench.generators.base",
    "SegmenterEntry": "gbench.segmentation",
    "FeatureExtractor": "gbench.metrics.features",
    "Dataset": "gbench.data.types",
    "Sample": "gbench.data.types",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gbench.api' has no attribute {name!r}")


def register_generator(name: str, factory: Callable[..., Any], *, frozen: bool | None = None) -> Callable[..., Any]:
    """Register an image generator: a frozen one (``factory(checkpoint=None, **options)``) or a
    trainable :class:`GeneratorModule` factory. Returns ``factory`` (usable as a decorator through
    ``functools.partial``).

    Args:
        frozen: True: ``factory`` builds a frozen generator whatever its annotation says; None:
            told from the factory (a class with ``generate``, or a return annotation naming one).

    Raises:
        ValueError: a name that is taken (both sources named) or not kebab-case.
        TypeError: neither contract is met.
    """
    from gbench import generators
    from gbench.generators.frozen import FrozenEntry

    generators.GENERATORS.register(name, FrozenEntry(factory) if frozen else factory)
    return factory


def register_stack_generator(name: str, factory: Callable[..., Any]) -> Callable[..., Any]:
    """Register a multi-focus stack generator (a :class:`StackGenerator` factory)."""
    from gbench import generators

    generators.STACK_GENERATORS.register(name, factory)
    return factory


def register_segmenter(name: str, entry: Any) -> Any:
    """Register a segmentation architecture (a :class:`SegmenterEntry`)."""
    from gbench import segmentation

    segmentation.SEGMENTERS.register(name, entry)
    return entry


def register_extractor(name: str, factory: Callable[..., Any]) -> Callable[..., Any]:
    """Register a feature extractor: ``factory(weights, *, seed, device) -> FeatureExtractor``."""
    from gbench.metrics import features

    features.EXTRACTOR_REGISTRY.register(name, factory)
    return factory


def register_dataset(name: str, factory: Callable[..., Any]) -> Callable[..., Any]:
    """Register a labelled dataset: ``factory(split) -> Dataset``."""
    from gbench.data import resolve

    resolve.DATASETS.register(name, factory)
    return factory


def load_plugin(spec: str) -> str:
    """Import a plugin module or ``.py`` file now (what ``--plugin`` does); returns its source.

    Raises:
        ValueError: it failed to import (one line naming it and the error) or a name clashed.
    """
    from gbench.core.registry import load_plugin as _load

    return _load(spec, strict=True)
