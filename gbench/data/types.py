"""Value types of the data layer."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, overload

import numpy as np

__all__ = ["Sample", "Dataset"]


@dataclass(frozen=True)
class Sample:
    """One image with its nuclei.

    Attributes:
        name: sample id, unique within its dataset (file stem for datasets on disk).
        image: (H, W, 3) uint8 RGB.
        instances: (H, W) int32 instance map, 0 = background, one id per nucleus (ids need
            not be contiguous).
        meta: free-form provenance (source file, magnification, ...).
    """

    name: str
    image: np.ndarray
    instances: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.image.shape[0]), int(self.image.shape[1]))


class Dataset(Sequence[Sample]):
    """A lazily loaded, indexable sequence of samples.

    Args:
        name: dataset name as recorded in results (``cpm``, ``synthetic-he``, a path, ...).
        split: ``train``, ``test`` or ``all``.
        names: sample names in order.
        load: function loading the sample of a given name.
        info: description of how the dataset was made (loader, root, parameters).
    """

    def __init__(
        self,
        name: str,
        split: str,
        names: Sequence[str],
        load: Callable[[str], Sample],
        info: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.split = split
        self.names = list(names)
        self._load = load
        self.info = dict(info or {})

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...
    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self._load(n) for n in self.names[index]]
        return self._load(self.names[index])

    def __iter__(self) -> Iterator[Sample]:
        for n in self.names:
            yield self._load(n)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, split={self.split!r}, n={len(self)})"
