"""Conditioning maps for generators that live outside gbench: ``gbench maps export`` and ``gbench maps sample``.

``export_maps`` writes exactly the crops that Table 1 scores (``gbench quality --generator``,
:func:`gbench.pipelines.generator_eval.evaluate_generator`): every tile of the dataset's split
(the test split by default), in name order, is cut into grid crops of the profile's
``evaluation.crop`` side (:func:`gbench.data.patches.grid_crops`: tiles smaller than a crop are
mirror-padded first; the last crop of a row or column is flush with the tile's edge). Crop
``<tile>@y<Y>x<X>`` is the crop whose top-left corner is at row ``Y``, column ``X`` of tile
``<tile>``. A model in any framework draws one image per crop from its maps and writes it as
``<tile>@y<Y>x<X>.png`` (any of .png .tif .jpg .bmp; the same stem) into a folder;
``gbench quality --data D --fake FOLDER --label NAME`` then scores that folder as a Table 1 row,
with the test-set hash and resampling units (the crops of one tile are one unit) of the
in-process route, so ``gbench compare`` and the floor test work between both.

Layout of an export (``OUT``)::

    images/<crop>.png     the real crop, RGB 8 bit (what the synthetic image is scored against)
    labels/<crop>.png     instance map, 16-bit gray PNG: 0 = background, 1..n = nuclei
    binary/<crop>.png     binary mask (gbench.data.conditioning.binary_mask), 8-bit gray, 0 or 255
    distance/<crop>.npy   Sharp-GAN distance map (gbench.data.conditioning.distance_map), float32
                          (H, W) in [0, 1], the exact values gbench's generators are fed
    contour/<crop>.png    contour map (gbench.data.conditioning.contour_map), 8-bit gray, 0 or 255
    manifest.csv          one row per crop: name, tile, y, x, size, image, label, binary, distance,
                          contour (paths relative to OUT)
    maps.json             kind "export", dataset, split, profile, data_seed, crop size, count,
                          test_set (the hash Table 1 records carry), layout, provenance

``sample_maps`` writes the input of a synthetic set instead: ``count`` nucleus instance maps drawn
by :func:`gbench.data.masks.synthesize_instance_map` with statistics fitted to the dataset's
training split (:func:`gbench.data.masks.fit_mask_stats`), named ``mask-s<seed>-<k:06d>``, in the
same layout without ``images/`` (``maps.json`` holds kind "sample", the seed and the fitted
statistics). ``gbench synthesize NAME --masks OUT`` draws a set from such a folder (or any folder
of instance maps).

Both write into a hidden staging folder inside ``OUT`` and rename its entries into place at the
end, ``maps.json`` last: a folder with ``maps.json`` is complete, and an interrupted run leaves
only the staging folder behind.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gbench.core.errors import DataError
from gbench.core.fileio import write_json, write_text
from gbench.core.observations import hash_test_set, hash_test_set_lazy
from gbench.core.profiles import Profile, as_profile
from gbench.core.provenance import provenance as collect_provenance
from gbench.data.conditioning import binary_mask, contour_map, distance_map
from gbench.data.io import write_png
from gbench.data.patches import grid_crops, grid_positions
from gbench.data.resolve import resolve_dataset

__all__ = ["Crop", "table1_crops", "crop_name", "export_maps", "sample_maps", "MapsResult", "MANIFEST_COLUMNS",
           "MAP_FOLDERS", "streaming_hash", "Table1Crops"]

#: Columns of an export's / a sample's ``manifest.csv`` (a sample leaves ``image``, ``tile``, ``y``, ``x`` empty).
MANIFEST_COLUMNS = ("name", "tile", "y", "x", "size", "image", "label", "binary", "distance", "contour")
#: The map folders and their file suffix.
MAP_FOLDERS = {"labels": ".png", "binary": ".png", "distance": ".npy", "contour": ".png"}
#: Layout version written to ``maps.json``.
LAYOUT = "gbench-maps/1"


def crop_name(tile: str, y: int, x: int) -> str:
    """The name of a grid crop: ``<tile>@y<Y>x<X>`` (the resampling unit is the part before ``@``)."""
    return f"{tile}@y{int(y)}x{int(x)}"


@dataclass(frozen=True)
class Crop:
    """One Table 1 test crop: its name, source tile, offset, real image (uint8 (H, W, 3)) and
    instance map (int32 (H, W))."""

    name: str
    tile: str
    y: int
    x: int
    image: np.ndarray
    instances: np.ndarray


@dataclass(frozen=True)
class Table1Crops:
    """The crops of a split as Table 1 scores them (iterate :meth:`crops`; nothing is held in memory).

    Attributes:
        dataset: the loaded (lazy) dataset.
        name: its name as records carry it (``dataset`` column).
        split, profile, data_seed, size: what picked the crops.
        test_set: :func:`streaming_hash` of the split (= :func:`gbench.data.resolve.split_hash`, the in-process route's hash).
    """

    dataset: Any
    name: str
    split: str
    profile: str
    data_seed: int
    size: int
    test_set: str
    tile_shapes: tuple[tuple[int, int], ...] | None = None  # (H, W) per tile in dataset order, when known

    def crops(self) -> Iterator[Crop]:
        """Every crop, in tile (dataset) order then grid order, as :func:`evaluate_generator` walks them."""
        for sample in self.dataset:
            for img, inst, (y, x) in grid_crops(sample.image, sample.instances, self.size):
                yield Crop(crop_name(sample.name, y, x), sample.name, int(y), int(x), img, inst)

    def names(self) -> list[str]:
        """The crop names, in :meth:`crops` order (from the tile shapes when known, else by loading each tile)."""
        if self.tile_shapes is None:
            return [c.name for c in self.crops()]
        out = []
        for tile, (h, w) in zip(self.dataset.names, self.tile_shapes):
            hp, wp = max(h, self.size), max(w, self.size)  # pad_to mirrors a short side up to the crop side
            out += [crop_name(tile, y, x) for y in grid_positions(hp, self.size, self.size)
                    for x in grid_positions(wp, self.size, self.size)]
        return out


def table1_crops(data: str | Any, profile: Profile | str = "demo", split: str = "test", data_seed: int = 0) -> Table1Crops:
    """The crops Table 1 scores for ``data`` (a name, folder or loaded ``Dataset``) under ``profile``.

    The test-set hash is the one :func:`gbench.pipelines.generator_eval.evaluate_generator` records.
    """
    prof = as_profile(profile)
    ds = resolve_dataset(str(data), split, prof, data_seed) if isinstance(data, (str, Path)) else data
    shapes: dict[int, tuple[int, int]] = {}
    test_set = streaming_hash(ds, shapes)
    tile_shapes = tuple(shapes[i] for i in range(len(ds))) if len(shapes) == len(ds) else None
    if len(ds) == 0:
        raise DataError(Path(str(getattr(ds, "name", data))), f"no {split} tiles")
    return Table1Crops(ds, str(getattr(ds, "name", data)), split, prof.name, int(data_seed), int(prof.evaluation.crop),
                       test_set, tile_shapes)


def streaming_hash(ds: Any, shapes: dict[int, tuple[int, int]] | None = None) -> str:
    """:func:`gbench.core.observations.hash_test_set` of a dataset's (name, image, instances), the
    value :func:`gbench.data.resolve.split_hash` gives, computed one sample at a time in name order
    (``hash_test_set`` sorts its items first and so holds every image at once).

    ``shapes``, when given, receives each sample's (H, W) by dataset index (left empty when the
    dataset's names do not allow the one-at-a-time route)."""
    names = list(getattr(ds, "names", []))
    if len(names) != len(ds) or len(set(map(str, names))) != len(names):
        return hash_test_set((s.name, s.image, s.instances) for s in ds)

    def load(i: int) -> tuple[Any, Any]:
        s = ds[i]
        if str(s.name) != str(names[i]):
            raise _Renamed
        if shapes is not None:
            shapes[i] = (int(s.instances.shape[0]), int(s.instances.shape[1]))
        return s.image, s.instances

    try:
        return hash_test_set_lazy(((str(n), i) for i, n in enumerate(names)), load)
    except _Renamed:  # a loader that renames its samples: the plain route
        if shapes is not None:
            shapes.clear()
        return hash_test_set((t.name, t.image, t.instances) for t in ds)


class _Renamed(Exception):
    """A sample's name differs from the dataset's ``names`` entry (see :func:`streaming_hash`)."""


@dataclass(frozen=True)
class MapsResult:
    """What ``export_maps`` / ``sample_maps`` wrote: the folder, how many crops or maps, the
    test-set hash (exports only) and ``maps.json``'s content."""

    out: Path
    count: int
    test_set: str
    meta: dict[str, Any]


def _write_maps(root: Path, name: str, inst: np.ndarray) -> dict[str, str]:
    """labels/, binary/, distance/, contour/ files of one instance map; returns the relative paths."""
    if inst.size and int(inst.max()) > np.iinfo(np.uint16).max:
        raise ValueError(f"{name}: {int(inst.max())} nuclei do not fit a 16-bit label PNG")
    rel = {k: f"{k}/{name}{suffix}" for k, suffix in MAP_FOLDERS.items()}
    write_png(root / rel["labels"], inst.astype(np.uint16))
    write_png(root / rel["binary"], binary_mask(inst) * np.uint8(255))
    (root / "distance").mkdir(parents=True, exist_ok=True)
    np.save(root / rel["distance"], distance_map(inst).astype(np.float32), allow_pickle=False)
    write_png(root / rel["contour"], contour_map(inst) * np.uint8(255))
    return rel


def _manifest(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in MANIFEST_COLUMNS})
    return buf.getvalue()


class _Staging:
    """A hidden staging folder inside ``out``; on success its entries are renamed into ``out``
    (``maps.json`` last, so a folder with ``maps.json`` is complete); on failure it is removed."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        clash = [n for n in (*MAP_FOLDERS, "images", "manifest.csv", "maps.json") if (self.out / n).exists()]
        if clash:
            raise DataError(self.out, f"already holds {clash[0]}; choose another --out (or --overwrite)")
        self.out.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=".maps-staging-", dir=self.out))

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        entries = sorted(self.tmp.iterdir(), key=lambda p: p.name == "maps.json")
        for entry in entries:
            os.replace(entry, self.out / entry.name)
        self.tmp.rmdir()


def export_maps(data: str | Any, out: str | Path, *, split: str = "test", profile: Profile | str = "demo",
                data_seed: int = 0) -> MapsResult:
    """Write the crops Table 1 scores, their instance maps and conditioning maps (layout: module docstring).

    Args:
        data: dataset name or folder (:func:`gbench.data.resolve.resolve_dataset`) or a loaded ``Dataset``.
        out: a new (or empty) folder.
        split: the split whose tiles are cut (Table 1: ``test``).
        profile: gives the crop side (``evaluation.crop``) and a built-in dataset's size.
        data_seed: which tiles a built-in dataset draws.

    Returns:
        A :class:`MapsResult` (``test_set`` is the hash of the in-process route's records).

    Raises:
        DataError: ``out`` not empty, unreadable data. ValueError: more than 65535 nuclei in a crop.
    """
    tc = table1_crops(data, profile, split, data_seed)
    rows: list[dict[str, Any]] = []
    with _Staging(Path(out)) as tmp:
        for c in tc.crops():
            rel = _write_maps(tmp, c.name, c.instances)
            write_png(tmp / "images" / f"{c.name}.png", c.image)
            rows.append({"name": c.name, "tile": c.tile, "y": c.y, "x": c.x, "size": tc.size,
                         "image": f"images/{c.name}.png", "label": rel["labels"], "binary": rel["binary"],
                         "distance": rel["distance"], "contour": rel["contour"]})
        if not rows:
            raise DataError(Path(tc.name), f"no {split} crops")
        meta = {"kind": "export", "layout": LAYOUT, "dataset": tc.name, "data": str(data), "split": split,
                "profile": tc.profile, "data_seed": tc.data_seed, "crop_size": tc.size, "count": len(rows),
                "tiles": len(tc.dataset), "test_set": tc.test_set, "units": "tile (the part of a name before @)",
                "provenance": collect_provenance(profile=tc.profile, seed=0, data_seed=tc.data_seed)}
        write_text(tmp / "manifest.csv", _manifest(rows))
        write_json(tmp / "maps.json", meta)
    return MapsResult(Path(out), len(rows), tc.test_set, meta)


def sample_maps(data: str | Any, count: int, out: str | Path, *, seed: int = 0, profile: Profile | str = "demo",
                data_seed: int = 0, size: int | None = None) -> MapsResult:
    """Write ``count`` nucleus instance maps fitted to ``data``'s training split, with their conditioning maps.

    Map ``k`` is :func:`gbench.data.masks.synthesize_instance_map` ``(size, seed, k)`` under the
    statistics :func:`gbench.data.masks.fit_mask_stats` fits to the training split (calibrated
    from ``seed``): the maps ``gbench synthesize --data D --seed S`` draws. Same seed, same files.

    Args:
        data: dataset name or folder, or a loaded ``Dataset`` (its samples' instance maps are fitted).
        count: how many maps.
        out: a new (or empty) folder.
        seed: mask seed.
        profile: gives the default ``size`` (``synthesis.image_size``) and a built-in dataset's size.
        data_seed: which tiles a built-in dataset draws.
        size: side of a map.
    """
    from gbench.data.masks import fit_mask_stats, synthesize_instance_map

    if count <= 0:
        raise ValueError(f"--count must be positive, got {count}")
    prof = as_profile(profile)
    side = int(size or prof.synthesis.image_size)
    if side <= 0:
        raise ValueError(f"--size must be positive, got {side}")
    ds = resolve_dataset(str(data), "train", prof, data_seed) if isinstance(data, (str, Path)) else data
    stats = fit_mask_stats(ds, seed=seed)
    rows: list[dict[str, Any]] = []
    with _Staging(Path(out)) as tmp:
        for k in range(count):
            name = f"mask-s{seed}-{k:06d}"
            rel = _write_maps(tmp, name, synthesize_instance_map(side, seed, k, stats=stats))
            rows.append({"name": name, "size": side, "label": rel["labels"], "binary": rel["binary"],
                         "distance": rel["distance"], "contour": rel["contour"]})
        meta = {"kind": "sample", "layout": LAYOUT, "dataset": str(getattr(ds, "name", data)), "split": "train",
                "profile": prof.name, "data_seed": int(data_seed), "seed": int(seed), "size": side, "count": count,
                "mask_stats": dataclasses.asdict(stats),
                "provenance": collect_provenance(profile=prof.name, seed=seed, data_seed=data_seed)}
        write_text(tmp / "manifest.csv", _manifest(rows))
        write_json(tmp / "maps.json", meta)
    return MapsResult(Path(out), count, "", meta)
