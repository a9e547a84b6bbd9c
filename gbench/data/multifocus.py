"""Multi-focus cell stacks: the sample type, the ``multifocus`` loader and the x6 augmentation.

A multi-focus sample is a stack of ``P`` focus planes (MI-GAN: ``P = 11``, planes
``I-5 .. I+5``) of one cell, stored as a ``(P, H, W, 3)`` uint8 array with the in-focus base
image ``I0`` in the middle (index ``P // 2``).

On disk (``multifocus`` loader) a dataset is a folder holding one entry per cell, any mix of:

- ``NAME.tif`` / ``NAME.tiff``: a multi-page TIFF, one RGB page per plane (page order = plane order);
- ``NAME.npy``: an array ``(P, H, W, 3)`` uint8;
- ``NAME/``: a folder of ``P`` images (PNG, TIFF, JPEG), planes in name order
  (``00.png`` .. ``10.png``, or ``z-5.png`` ..: names are sorted as text, so zero-pad them).

With ``train/`` and ``test/`` sub-folders each is a split; a flat folder is one split,
``all``. Other files (``manifest.csv``, ``run.json``, hidden files) are ignored.

>>> ds = load_stacks("synthetic-cells:siha", split="train", n=2)
>>> ds[0].stack.shape
(11, 64, 64, 3)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tifffile

from gbench.core.errors import DataError
from gbench.core.fileio import atomic_path
from gbench.data.io import _read_array, read_image, write_png
from gbench.data.types import Dataset

__all__ = [
    "PLANES", "FocusStack", "check_stack", "read_stack", "write_stack", "load_multifocus",
    "AUGMENTATIONS", "augment_stack", "augmented", "stack_array", "plane_labels",
]

#: Focus planes of an MI-GAN stack (I-5 .. I+5).
PLANES = 11
_STACK_FILES = (".tif", ".tiff", ".npy")
_PLANE_FILES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
SPLITS = ("train", "test", "all")


def plane_labels(planes: int = PLANES) -> list[str]:
    """Plane names ``I-5 .. I0 .. I+5`` for a stack of ``planes`` planes."""
    half = planes // 2
    return [f"I{k:+d}" if k else "I0" for k in range(-half, half + 1)]


@dataclass(frozen=True)
class FocusStack:
    """One cell imaged at ``P`` focus points.

    Attributes:
        name: sample id, unique within its dataset.
        stack: ``(P, H, W, 3)`` uint8, planes ``I-(P//2) .. I+(P//2)``, ``I0`` in the middle.
        meta: provenance (source file, cell type, generator, ...).
    """

    name: str
    stack: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def planes(self) -> int:
        return int(self.stack.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.stack.shape[1]), int(self.stack.shape[2]))

    @property
    def base(self) -> np.ndarray:
        """The in-focus base image ``I0``, ``(H, W, 3)`` uint8."""
        return self.stack[self.planes // 2]


def check_stack(stack: Any, path: str | Path | None = None, planes: int = PLANES,
                size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Validate a stack and return it as a C-contiguous ``(P, H, W, 3)`` uint8 array.

    A grayscale stack ``(P, H, W)`` is replicated to three channels, an RGBA stack drops a fully
    opaque alpha (any transparency is refused, as for single images), a planar ``(P, 3, H, W)`` stack is moved to channels-last.

    Args:
        stack: the array.
        path: file it came from (named in the error); None raises ValueError instead of DataError.
        planes: required number of focus planes.
        size: required side (or ``(H, W)``); None accepts any size.

    Raises:
        DataError / ValueError: wrong plane count, shape, size or dtype (one line).
    """
    def fail(problem: str) -> None:
        if path is None:
            raise ValueError(f"focus stack: {problem}")
        raise DataError(path, problem)

    arr = np.asarray(stack)
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=3)
    elif arr.ndim == 4 and arr.shape[1] in (3, 4) and arr.shape[3] not in (3, 4):
        arr = np.moveaxis(arr, 1, -1)
    if arr.ndim != 4 or arr.shape[3] not in (3, 4):
        fail(f"expected a focus stack of shape ({planes}, H, W, 3), got an array of shape {arr.shape}")
    if arr.shape[3] == 4:
        alpha = arr[..., 3]
        opaque = np.iinfo(arr.dtype).max if np.issubdtype(arr.dtype, np.integer) else 1.0
        transparent = int(np.count_nonzero(alpha < opaque))
        if transparent:
            fail(f"has an alpha channel with {transparent} transparent pixel(s); gbench does not composite "
                 "transparency: save the stack without alpha")
    arr = arr[..., :3]
    if arr.shape[0] != planes:
        fail(f"has {arr.shape[0]} focus planes, expected {planes} (I-{planes // 2} .. I+{planes // 2})")
    if arr.dtype != np.uint8:
        fail(f"expected uint8 planes, got dtype {arr.dtype}")
    if size is not None:
        want = (size, size) if isinstance(size, int) else tuple(size)
        if tuple(arr.shape[1:3]) != want:
            fail(f"planes are {arr.shape[1]}x{arr.shape[2]} pixels, expected {want[0]}x{want[1]}")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        fail("planes are empty")
    return np.ascontiguousarray(arr)


def read_stack(path: str | Path, planes: int = PLANES, size: int | None = None) -> np.ndarray:
    """Read one stack from a multi-page TIFF, a ``.npy`` file or a folder of plane images.

    Raises:
        DataError: unreadable file, wrong plane count, size or dtype, planes of different sizes.
    """

    path = Path(path)
    if path.is_dir():
        files = [p for p in sorted(path.iterdir())
                 if p.is_file() and p.suffix.lower() in _PLANE_FILES and not p.name.startswith(".")]
        if len(files) != planes:
            raise DataError(path, f"holds {len(files)} plane images, expected {planes} (I-{planes // 2} .. I+{planes // 2})")
        imgs = [read_image(p) for p in files]
        for p, im in zip(files[1:], imgs[1:]):
            if im.shape != imgs[0].shape:
                raise DataError(p, f"plane is {im.shape[0]}x{im.shape[1]}, but {files[0].name} is {imgs[0].shape[0]}x{imgs[0].shape[1]}")
        return check_stack(np.stack(imgs), path, planes, size)
    if path.suffix.lower() not in _STACK_FILES:
        raise DataError(path, f"not a focus stack: expected .tif/.tiff/.npy or a folder of {planes} images")
    arr = _read_array(path)
    return check_stack(arr, path, planes, size)


def write_stack(path: str | Path, stack: np.ndarray) -> Path:
    """Write a stack atomically as ``.npy``, multi-page ``.tif`` or (no suffix) a folder of PNGs.

    The folder form writes ``00.png`` .. ``10.png`` (each file atomically).
    """

    arr = check_stack(stack, None, planes=int(np.asarray(stack).shape[0]))
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
    elif suffix in (".tif", ".tiff"):
        with atomic_path(path) as tmp:
            tifffile.imwrite(tmp, arr, photometric="rgb")
    elif suffix == "":
        path.mkdir(parents=True, exist_ok=True)
        width = max(2, len(str(arr.shape[0] - 1)))
        for k, plane in enumerate(arr):
            write_png(path / f"{k:0{width}d}.png", plane)
    else:
        raise ValueError(f"write_stack: unknown format {suffix!r} (use .npy, .tif or a folder path)")
    return path


def _entries(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir() or p.suffix.lower() in _STACK_FILES:
            stem = p.name if p.is_dir() else p.stem
            if stem in out:
                raise DataError(p, f"two stacks share the name {stem!r} ({out[stem].name} and {p.name})")
            out[stem] = p
    return out


def load_multifocus(root: str | Path, split: Literal["train", "test", "all"] = "all", name: str | None = None,
                    planes: int = PLANES, size: int | None = None) -> Dataset:
    """Load a folder of focus stacks (layout in the module docstring).

    Args:
        root: the folder.
        split: ``train`` / ``test`` (sub-folders of that name) or ``all``.
        name: dataset name in results (default: the path).
        planes: required planes per stack.
        size: required plane side; None accepts any (but all stacks are checked against the first).

    Returns:
        A lazy :class:`Dataset` of :class:`FocusStack`; a bad file raises DataError when read.

    Raises:
        DataError: missing folder, missing split, no stacks found.
        ValueError: an unknown split.
    """
    root = Path(root).expanduser()
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not root.exists():
        raise DataError(root, "folder not found")
    if not root.is_dir():
        raise DataError(root, "not a folder")
    present = [s for s in ("train", "test") if (root / s).is_dir()]
    if present:
        want = present if split == "all" else [split]
        for s in want:
            if s not in present:
                raise DataError(root / s, f"split folder missing (present: {', '.join(present)})")
        parts = [(s, root / s) for s in want]
    else:
        if split != "all":
            raise DataError(root, f"holds a single split (no train/ or test/ sub-folders); ask for split 'all', not {split!r}")
        parts = [("all", root)]
    entries: dict[str, tuple[Path, str]] = {}
    for s, folder in parts:
        for stem, p in _entries(folder).items():
            key = stem if len(parts) == 1 else f"{s}/{stem}"
            entries[key] = (p, s)
    if not entries:
        raise DataError(root, f"no focus stacks found (expected .tif/.npy files or folders of {planes} images)")
    first_size: list[tuple[int, int]] = []

    def load(key: str) -> FocusStack:
        p, s = entries[key]
        arr = read_stack(p, planes=planes, size=size)
        if first_size and arr.shape[1:3] != first_size[0]:
            raise DataError(p, f"planes are {arr.shape[1]}x{arr.shape[2]} pixels, but other stacks in {root} are "
                            f"{first_size[0][0]}x{first_size[0][1]}")
        if not first_size:
            first_size.append(tuple(arr.shape[1:3]))  # type: ignore[arg-type]
        return FocusStack(key, arr, {"path": str(p), "split": s})

    return Dataset(name or str(root), split, sorted(entries), load,  # type: ignore[arg-type]
                   {"loader": "multifocus", "root": str(root), "planes": planes})


AUGMENTATIONS = ("identity", "rot90", "rot180", "rot270", "flip-ud", "flip-lr")


def augment_stack(stack: np.ndarray, which: int | str) -> np.ndarray:
    """Apply one of :data:`AUGMENTATIONS` to every plane of a ``(P, H, W, C)`` stack alike.

    Rotations are counter-clockwise (``np.rot90`` on the plane axes).
    """
    if isinstance(which, str):
        if which not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {which!r} (known: {', '.join(AUGMENTATIONS)})")
        which = AUGMENTATIONS.index(which)
    if not 0 <= int(which) < len(AUGMENTATIONS):
        raise ValueError(f"augmentation index must be in 0..{len(AUGMENTATIONS) - 1}, got {which}")
    k = int(which)
    if k == 0:
        out = stack
    elif k <= 3:
        out = np.rot90(stack, k=k, axes=(1, 2))
    elif k == 4:
        out = stack[:, ::-1]
    else:
        out = stack[:, :, ::-1]
    return np.ascontiguousarray(out)


def augmented(dataset: Sequence[FocusStack]) -> Dataset:
    """The x6 augmented view of a stack dataset: item ``6 i + k`` is stack ``i`` under transform ``k``."""
    base = dataset
    names = [f"{n}@{a}" for n in getattr(dataset, "names", [s.name for s in dataset]) for a in AUGMENTATIONS]
    index = {n: i for i, n in enumerate(names)}

    def load(key: str) -> FocusStack:
        i = index[key]
        s = base[i // len(AUGMENTATIONS)]
        k = i % len(AUGMENTATIONS)
        return FocusStack(key, augment_stack(s.stack, k), {**s.meta, "augmentation": AUGMENTATIONS[k]})

    info = dict(getattr(dataset, "info", {}))
    info["augmentation"] = "x6 (identity, rot90, rot180, rot270, flip-ud, flip-lr)"
    return Dataset(getattr(dataset, "name", "stacks"), getattr(dataset, "split", "all"), names, load, info)  # type: ignore[arg-type]


def stack_array(dataset: Sequence[FocusStack], limit: int | None = None) -> np.ndarray:
    """All stacks of a dataset as one ``(N, P, H, W, 3)`` uint8 array (the first ``limit`` ones)."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    if n == 0:
        raise ValueError("no stacks to stack: the dataset is empty")
    items = [dataset[i].stack for i in range(n)]
    for i, a in enumerate(items[1:], 1):
        if a.shape != items[0].shape:
            raise ValueError(f"stack {i} has shape {a.shape}, stack 0 has {items[0].shape}")
    return np.stack(items)
