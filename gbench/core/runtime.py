"""How training runs on a device: mixed precision, memory format, data-loading workers, determinism.

A :class:`Runtime` says *how* a run executes, not *what* it computes: every field is ``None``
("auto") by default and is resolved for the device the run lands on (:meth:`Runtime.resolve`):

==================  ===================================  =====================================
field               CPU (auto)                           CUDA (auto)
==================  ===================================  =====================================
``amp``             ``off`` (float32)                    ``bf16`` autocast
``channels_last``   off                                  on (4-D weights and image batches)
``workers``         0 (batches built in the main         ``min(8, CPUs per GPU - 1)``, at least 1
                    process, today's behaviour)          ``DataLoader`` worker processes
``deterministic``   on (same seed, same numbers)         off: ``cudnn.benchmark`` picks the
                                                         fastest kernels
==================  ===================================  =====================================

Data-loading workers never change the numbers (batch ``s`` is a pure function of the seed and
``s``; tested bit for bit on the CPU). ``amp`` does, which is why :meth:`Runtime.key` (the part a
stage-cache key holds) is the precision alone. A profile carries one (``Profile.runtime``, all
auto); ``train-gen``, ``segment``, ``reproduce`` and ``bench`` set it from ``--amp``,
``--workers``, ``--channels-last/--no-channels-last`` and ``--deterministic/--no-deterministic``;
every training run records the resolved values (``run.json`` ``runtime`` and ``provenance``).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

__all__ = ["Runtime", "AMP_MODES", "default_workers"]

#: ``--amp`` choices: bfloat16 or float16 autocast (float16 with a gradient scaler), or float32.
AMP_MODES: tuple[str, ...] = ("bf16", "fp16", "off")


def default_workers() -> int:
    """Data-loading workers per process on CUDA: the CPUs this process may use, shared by the
    processes of one machine (torchrun's ``LOCAL_WORLD_SIZE``), less one for the training loop;
    at least 1, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    per_process = cpus // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(8, per_process - 1))


@dataclass(frozen=True)
class Runtime:
    """Execution settings of a training run (``None``: auto for the device; module docstring).

    Attributes:
        amp: ``bf16``, ``fp16`` or ``off``.
        channels_last: NHWC memory format for 4-D weights and inputs.
        workers: ``DataLoader`` worker processes building batches (crops, augmentation,
            conditioning maps); 0 builds them in the training process.
        deterministic: deterministic algorithms, cuDNN benchmarking off; ``False`` turns
            ``cudnn.benchmark`` on.
    """

    amp: str | None = None
    channels_last: bool | None = None
    workers: int | None = None
    deterministic: bool | None = None

    def __post_init__(self) -> None:
        if self.amp is not None and self.amp not in AMP_MODES:
            raise ValueError(f"--amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.workers is not None and (isinstance(self.workers, bool) or int(self.workers) != self.workers
                                         or self.workers < 0):
            raise ValueError(f"--workers must be a non-negative integer, got {self.workers!r}")

    def resolve(self, device_type: str) -> Runtime:
        """Every auto field decided for ``device_type`` (``cpu`` or ``cuda``)."""
        cuda = device_type == "cuda"
        return Runtime(amp=self.amp if self.amp is not None else ("bf16" if cuda else "off"),
                       channels_last=self.channels_last if self.channels_last is not None else cuda,
                       workers=self.workers if self.workers is not None else (default_workers() if cuda else 0),
                       deterministic=self.deterministic if self.deterministic is not None else not cuda)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> dict[str, Any]:
        """What of this runtime a stage-cache key holds: the precision (workers, memory format and
        determinism change no number on the CPU; the device is not part of a key either)."""
        return {"amp": self.amp}
