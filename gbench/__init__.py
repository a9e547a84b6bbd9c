"""gbench: evaluation and benchmarking of GAN-synthesized histopathology and cytology images.

The plugin API (:mod:`gbench.api`) is reachable from here too, loaded on first use so that
``import gbench`` stays light: ``gbench.register_generator(name, factory)``,
``gbench.register_segmenter``, ``gbench.register_extractor``, ``gbench.register_dataset``,
``gbench.register_stack_generator``, ``gbench.load_plugin``, ``gbench.FrozenGenerator``.
"""
import os as _os
from typing import Any as _Any

# OpenMP threads that spin while waiting make torch on a shared 2-core machine up to 20x slower
# (measured: a demo-size Sharp-GAN step took 5.8 s with spinning threads, 0.32 s passive). The
# variable must be set before torch loads libgomp; a value set by the user wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

_API = ("register_generator", "register_stack_generator", "register_segmenter", "register_extractor",
        "register_dataset", "load_plugin", "FrozenGenerator", "GeneratorModule", "SegmenterEntry")


def __getattr__(name: str) -> _Any:
    if name in _API:
        import importlib  # not ``from gbench import api``: gbench.core imports this package, and a static
        # import would put the whole API (which reaches every layer) under it for import-linter

        return getattr(importlib.import_module("gbench.api"), name)
    raise AttributeError(f"module 'gbench' has no attribute {name!r}")
