"""Dataset loaders: ``cpm``, ``monuseg``, ``folder`` and the built-in ``synthetic-he``.

``load_dataset(name_or_path, split)`` picks a loader by name (``synthetic-he``), by an explicit
``loader:path`` prefix (``cpm:/data/cpm17``), by a dataset name found under the data root
(``cpm17`` -> ``$GBENCH_DATA/cpm17``), a combined name (``cpm15+cpm17``: the union of both), or by
detecting a folder's layout.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from skimage.draw import polygon as draw_polygon

from gbench.core.errors import DataError
from gbench.data.io import IMAGE_SUFFIXES, JPEG_LABEL_MESSAGE, JPEG_SUFFIXES, LABEL_SUFFIXES, read_image, read_label
from gbench.data.synthetic_he import synthetic_he
from gbench.data.types import Dataset, Sample

__all__ = ["load_dataset", "LOADERS", "BUILTINS", "KNOWN_REAL", "COMBINED", "COMBINED_ALIASES", "data_root",
           "detect_layout", "rasterize_polygons", "read_monuseg_xml", "concat_datasets", "load_combined"]

Split = Literal["train", "test", "all"]
SPLITS = ("train", "test", "all")

#: Real datasets gbench knows by name; each is looked up under the data root (never downloaded
#: by the library: see ``gbench data list``).
KNOWN_REAL: dict[str, tuple[str, str]] = {
    "cpm15": ("cpm", "CPM-15 (MICCAI 2015), HoVer-Net layout: train|test/Images/*.png + Labels/*.mat"),
    "cpm17": ("cpm", "CPM-17 (MICCAI 2017), HoVer-Net layout: train|test/Images/*.png + Labels/*.mat"),
    "monuseg": ("monuseg", "MoNuSeg 2018 (Kumar et al.): *.tif tissue images beside *.xml polygons"),
    "kumar": ("monuseg", "Kumar et al. 2017 (TMI): *.tif beside *.xml polygons"),
}

#: Combined datasets: name -> the named datasets whose splits it joins (each split is the union
#: of the parts' same split; sample names are prefixed by their source: ``cpm15_image_00``).
#: ``cpm15+cpm17`` is the Sharp-GAN paper's training and test data ("CPM-15&17").
COMBINED: dict[str, tuple[str, ...]] = {"cpm15+cpm17": ("cpm15", "cpm17")}
#: Other spellings of a combined name.
COMBINED_ALIASES: dict[str, str] = {"cpm15+17": "cpm15+cpm17", "cpm17+cpm15": "cpm15+cpm17"}


def data_root() -> Path:
    """Where named real datasets live: ``$GBENCH_DATA`` or ``~/.cache/gbench/data``."""
    env = os.environ.get("GBENCH_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gbench" / "data"


# --------------------------------------------------------------------------------------------
# cpm


def load_cpm(root: str | Path, split: Split = "train", name: str | None = None) -> Dataset:
    """CPM-15 / CPM-17 as redistributed with HoVer-Net.

    Layout: ``root/{train,test}/Images/<name>.png`` and ``root/{train,test}/Labels/<name>.mat``
    with the variable ``inst_map``. A folder that itself holds ``Images/`` and ``Labels/`` is one
    split, reported as ``all``.
    """
    root = Path(root)
    _check_dir(root)
    _check_split(split)
    if (root / "Images").is_dir():
        if split not in ("all",):
            raise DataError(root, f"holds a single split (Images/ and Labels/ at the top); ask for split='all', not {split!r}")
        parts = [("all", root)]
    else:
        present = [s for s in ("train", "test") if (root / s).is_dir()]
        if not present:
            raise DataError(root, "not a CPM folder: expected train/ and test/ with Images/ and Labels/ inside")
        want = present if split == "all" else [split]
        for s in want:
            if s not in present:
                raise DataError(root / s, f"split folder missing (present: {', '.join(present)})")
        parts = [(s, root / s) for s in want]
    entries: dict[str, tuple[Path, Path, str]] = {}
    for s, folder in parts:
        pairs = _pair_files(folder / "Images", folder / "Labels", IMAGE_SUFFIXES, (".mat",))
        for stem, (img, lab) in pairs.items():
            key = stem if split != "all" or len(parts) == 1 else f"{stem}"
            if key in entries:
                raise DataError(img, f"sample name {stem!r} appears in more than one split")
            entries[key] = (img, lab, s)
    return _file_dataset(name or str(root), split, entries, {"loader": "cpm", "root": str(root)})


# --------------------------------------------------------------------------------------------
# monuseg


#: How far (pixels) a MoNuSeg vertex may lie outside its image; real annotations overshoot the
#: border by a fraction of a pixel. A vertex further out is an annotation error and is refused.
OUT_OF_BOUNDS_MARGIN = 2.0


def read_monuseg_xml(path: str | Path, shape: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Polygons of an Aperio ImageScope XML file as a list of (K, 2) float arrays (x, y).

    Every ``<Region>`` is returned, in file order, so polygon k is region k (a region with fewer
    than 3 vertices is returned too: :func:`rasterize_polygons` draws nothing for it and counts it
    as dropped, and the ids of later polygons do not shift).

    Args:
        path: the XML file.
        shape: the image's (H, W); with it, a vertex more than :data:`OUT_OF_BOUNDS_MARGIN`
            pixels outside the image is refused.

    Raises:
        DataError: unparsable XML, no regions, a vertex without finite numeric X/Y, or one far
            outside the image (one line naming the file and the region).
    """

    path = Path(path)
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as exc:
        raise DataError(path, f"cannot parse XML annotation ({exc})") from None
    polys: list[np.ndarray] = []
    for k, region in enumerate(tree.getroot().iter("Region")):
        rid = region.attrib.get("Id", "?")
        pts = []
        for v in region.iter("Vertex"):
            try:
                x, y = float(v.attrib["X"]), float(v.attrib["Y"])
            except (KeyError, ValueError):
                raise DataError(path, f"region {rid} has a vertex without numeric X/Y") from None
            if not (math.isfinite(x) and math.isfinite(y)):
                raise DataError(path, f"region {rid} has a vertex with a non-finite coordinate ({x}, {y})")
            if shape is not None and not (-OUT_OF_BOUNDS_MARGIN <= x <= shape[1] + OUT_OF_BOUNDS_MARGIN
                                          and -OUT_OF_BOUNDS_MARGIN <= y <= shape[0] + OUT_OF_BOUNDS_MARGIN):
                raise DataError(path, f"region {rid} (polygon {k + 1}) has a vertex at ({x:g}, {y:g}), outside the "
                                      f"{shape[1]}x{shape[0]} image")
            pts.append((x, y))
        polys.append(np.asarray(pts, dtype=np.float64).reshape(-1, 2))
    if not polys:
        raise DataError(path, "no <Region> elements: not an ImageScope annotation file")
    return polys


def rasterize_polygons(polygons: list[np.ndarray], shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Rasterize nucleus polygons to an instance map, resolving overlaps deterministically.

    Polygon k (0-based, in file order) gets id k + 1. Polygons are painted from the largest
    area to the smallest, so where two overlap the smaller nucleus keeps the shared pixels and
    is never swallowed by a larger neighbour; between equal areas the earlier polygon in the
    file wins. A pixel belongs to a polygon when its centre lies inside or on the outline
    (``skimage.draw.polygon``; pixels outside ``shape`` are cut off). A polygon with fewer than 3
    vertices, or that ends up with no pixel of its own, is dropped (its id is not used: later
    polygons keep theirs); the count of dropped polygons is returned.
    """

    inst = np.zeros(shape, dtype=np.int32)
    areas = [0.5 * abs(np.dot(p[:, 0], np.roll(p[:, 1], 1)) - np.dot(p[:, 1], np.roll(p[:, 0], 1)))
             if len(p) >= 3 else 0.0 for p in polygons]
    order = sorted(range(len(polygons)), key=lambda k: (-areas[k], -k))
    for k in order:
        p = polygons[k]
        if len(p) < 3:
            continue
        rr, cc = draw_polygon(p[:, 1], p[:, 0], shape=shape)
        inst[rr, cc] = k + 1
    present = np.zeros(len(polygons) + 1, dtype=bool)
    present[np.unique(inst)] = True
    dropped = int(len(polygons) - present[1:].sum())
    return inst, dropped


def load_monuseg(root: str | Path, split: Split = "all", name: str | None = None) -> Dataset:
    """MoNuSeg / Kumar: ``.tif`` tissue tiles with ``.xml`` polygon annotations of the same stem.

    Files are searched recursively (the official releases nest ``Tissue Images/`` and
    ``Annotations/``). A file's split is ``test`` when a folder on its path names "test", ``train``
    when one names "train"; ``all`` takes every file. A stem found twice (say in both a train and
    a test folder) is refused, naming both files: a tile must not be trained and tested on.
    """
    root = Path(root)
    _check_dir(root)
    _check_split(split)
    tifs = _unique_stems(root, [p for p in sorted(root.rglob("*")) if p.suffix.lower() in (".tif", ".tiff")], "tile")
    xmls = _unique_stems(root, [p for p in sorted(root.rglob("*")) if p.suffix.lower() == ".xml"], "annotation")
    _check_pairs(root, tifs, xmls, "image", "annotation (.xml)")
    entries: dict[str, tuple[Path, Path, str]] = {}
    for stem in sorted(tifs):
        s = _monuseg_split(root, tifs[stem])
        if split == "all" or s == split:
            entries[stem] = (tifs[stem], xmls[stem], s)
    if not entries:
        raise DataError(root, f"no MoNuSeg tiles in split {split!r} (folders naming 'train'/'test' set the split)")

    def load(stem: str) -> Sample:
        img_path, xml_path, s = entries[stem]
        image = read_image(img_path)
        inst, dropped = rasterize_polygons(read_monuseg_xml(xml_path, image.shape[:2]), image.shape[:2])
        return Sample(stem, image, inst, {"image": str(img_path), "label": str(xml_path), "split": s,
                                          "dropped_polygons": dropped})

    return Dataset(name or str(root), split, sorted(entries), load, {"loader": "monuseg", "root": str(root)})


# --------------------------------------------------------------------------------------------
# folder


def load_folder(root: str | Path, split: Split = "all", name: str | None = None) -> Dataset:
    """Generic layout: ``images/NAME.png`` beside ``labels/NAME.{png,tif,npy}``.

    Either under ``train/`` and ``test/`` (as ``cpm``), or flat with an optional ``split.csv``
    (columns ``name`` and ``split``). A flat folder without ``split.csv`` is one split, ``all``.
    Never silent about files it would skip: images or labels in a sub-folder of ``images/`` or
    ``labels/``, a ``split.csv`` row naming no files, and JPEG labels are refused, each naming them.
    """
    root = Path(root)
    _check_dir(root)
    _check_split(split)
    entries: dict[str, tuple[Path, Path, str]] = {}
    if (root / "images").is_dir():
        pairs = _pair_files(root / "images", root / "labels", IMAGE_SUFFIXES, LABEL_SUFFIXES)
        splits = _read_split_csv(root / "split.csv", set(pairs)) if (root / "split.csv").is_file() else None
        if splits is None and split != "all":
            raise DataError(root, f"flat folder without split.csv holds one split; ask for split='all', not {split!r}")
        for stem, (img, lab) in pairs.items():
            s = "all" if splits is None else splits[stem]
            if split == "all" or s == split:
                entries[stem] = (img, lab, s)
    else:
        present = [s for s in ("train", "test") if (root / s / "images").is_dir()]
        if not present:
            raise DataError(root, "not a folder dataset: expected images/ and labels/ (flat or under train/ and test/)")
        for s in present if split == "all" else [split]:
            if s not in present:
                raise DataError(root / s, f"split folder missing (present: {', '.join(present)})")
            for stem, (img, lab) in _pair_files(root / s / "images", root / s / "labels", IMAGE_SUFFIXES, LABEL_SUFFIXES).items():
                if stem in entries:
                    raise DataError(img, f"sample name {stem!r} appears in more than one split")
                entries[stem] = (img, lab, s)
    if not entries:
        raise DataError(root, f"no samples in split {split!r}")
    return _file_dataset(name or str(root), split, entries, {"loader": "folder", "root": str(root)})


def _monuseg_split(root: Path, path: Path) -> str:
    rel = [part.lower() for part in path.relative_to(root).parts[:-1]]
    return "test" if any("test" in part for part in rel) else "train" if any("train" in part for part in rel) else "all"


def _unique_stems(root: Path, files: list[Path], what: str) -> dict[str, Path]:
    """Files by stem (hidden files skipped); a stem found twice is refused, naming both files."""
    out: dict[str, Path] = {}
    for p in files:
        if any(part.startswith(".") for part in p.relative_to(root).parts) or not p.is_file():
            continue
        if p.stem in out:
            first = out[p.stem]
            splits = {_monuseg_split(root, first), _monuseg_split(root, p)}
            where = " (in both a train and a test folder)" if splits == {"train", "test"} else ""
            raise DataError(p, f"{what} {p.stem!r} appears twice{where}: also {first}; keep one copy")
        out[p.stem] = p
    return out


def _read_split_csv(path: Path, names: set[str]) -> dict[str, str]:
    """Split of each sample from ``split.csv``; every sample needs a row and every row a sample."""
    out: dict[str, str] = {}
    lines: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text (byte {exc.start}: {exc.reason}); save split.csv as UTF-8") from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames is None or not {"name", "split"} <= set(reader.fieldnames):
            raise DataError(path, "split.csv needs the columns 'name' and 'split'")
        for line, row in enumerate(reader, start=2):
            if row["split"] not in ("train", "test"):
                raise DataError(path, f"line {line}: split must be 'train' or 'test', got {row['split']!r}")
            if row["name"] in out and out[row["name"]] != row["split"]:
                raise DataError(path, f"line {line}: sample {row['name']!r} is given two splits")
            out[row["name"]] = row["split"]
            lines.setdefault(row["name"], line)
    except csv.Error as exc:
        raise DataError(path, f"not a readable CSV file ({exc})") from None
    missing = sorted(names - set(out))
    if missing:
        raise DataError(path, f"no split given for {len(missing)} sample(s): {', '.join(missing[:5])}")
    orphans = sorted((lines[n], n) for n in set(out) - names)
    if orphans:
        line, name = orphans[0]
        more = f" (and {len(orphans) - 1} more row(s))" if len(orphans) > 1 else ""
        raise DataError(path, f"line {line}: row {name!r} has no files (no image and label named {name!r} in "
                              f"images/ and labels/){more}; remove the row or add the files")
    return out


# --------------------------------------------------------------------------------------------
# shared helpers


def _check_dir(root: Path) -> None:
    if not root.exists():
        raise DataError(root, "folder not found")
    if not root.is_dir():
        raise DataError(root, "not a folder")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


def _list(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Files of ``folder`` by stem; images in a (non-hidden) sub-folder are refused, naming it."""
    if not folder.is_dir():
        raise DataError(folder, "folder not found")
    out: dict[str, Path] = {}
    nested = [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")
              and any(f.is_file() and f.suffix.lower() in suffixes and not f.name.startswith(".") for f in p.rglob("*"))]
    if nested:
        n = sum(1 for d in nested for f in d.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
        raise DataError(folder, f"has {n} file(s) in sub-folder(s) {', '.join(d.name + '/' for d in nested[:5])}: gbench "
                                f"reads only the files directly in {folder.name}/; move them up or out of it")
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."):
            if p.stem in out:
                raise DataError(p, f"two files share the name {p.stem!r} ({out[p.stem].name} and {p.name})")
            out[p.stem] = p
    return out


def _check_pairs(root: Path, a: dict[str, Path], b: dict[str, Path], what_a: str, what_b: str) -> None:
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    if only_a:
        raise DataError(a[only_a[0]], f"{what_a} without a {what_b}" + (f" (and {len(only_a) - 1} more)" if len(only_a) > 1 else ""))
    if only_b:
        raise DataError(b[only_b[0]], f"{what_b} without an {what_a}" + (f" (and {len(only_b) - 1} more)" if len(only_b) > 1 else ""))
    if not a:
        raise DataError(root, "no images found")


def _pair_files(img_dir: Path, lab_dir: Path, img_suffixes: tuple[str, ...],
                lab_suffixes: tuple[str, ...]) -> dict[str, tuple[Path, Path]]:
    images = _list(img_dir, img_suffixes)
    labels = _list(lab_dir, lab_suffixes)
    jpegs = sorted(p for p in lab_dir.iterdir() if p.is_file() and p.suffix.lower() in JPEG_SUFFIXES)
    if jpegs:
        more = f" ({len(jpegs)} JPEG labels)" if len(jpegs) > 1 else ""
        raise DataError(jpegs[0], JPEG_LABEL_MESSAGE + more)
    _check_pairs(img_dir, images, labels, "image", "label")
    return {stem: (images[stem], labels[stem]) for stem in sorted(images)}


def _file_dataset(name: str, split: str, entries: dict[str, tuple[Path, Path, str]], info: dict[str, Any]) -> Dataset:
    def load(stem: str) -> Sample:
        img_path, lab_path, s = entries[stem]
        image = read_image(img_path)
        inst = read_label(lab_path)
        if inst.shape != image.shape[:2]:
            raise DataError(lab_path, f"label shape {inst.shape} does not match image shape {image.shape[:2]} ({img_path.name})")
        return Sample(stem, image, inst, {"image": str(img_path), "label": str(lab_path), "split": s})

    return Dataset(name, split, sorted(entries), load, info)


# --------------------------------------------------------------------------------------------
# combined datasets


def concat_datasets(parts: list[tuple[str, Dataset]], name: str, split: str) -> Dataset:
    """The union of several datasets' samples, each name prefixed by its source (``PREFIX_NAME``).

    A sample keeps its image and instances; its ``meta`` gains ``source`` (the prefix) and
    ``source_name`` (its name in the source dataset).
    """

    owner: dict[str, tuple[str, Dataset, int]] = {}
    for prefix, ds in parts:
        for i, stem in enumerate(ds.names):
            key = f"{prefix}_{stem}"
            if key in owner:
                raise ValueError(f"sample name {key!r} occurs twice in {name}: give the parts different prefixes")
            owner[key] = (prefix, ds, i)

    def load(key: str) -> Sample:
        prefix, ds, i = owner[key]
        s = ds[i]
        return dataclasses.replace(s, name=key, meta={**s.meta, "source": prefix, "source_name": s.name})

    info = {"loader": "combined", "parts": {prefix: dict(ds.info, name=ds.name, n=len(ds)) for prefix, ds in parts}}
    return Dataset(name, split, list(owner), load, info)


def load_combined(name: str, split: Split = "train") -> Dataset:
    """A :data:`COMBINED` dataset (or an alias): each part loaded by name, then joined."""
    canonical = COMBINED_ALIASES.get(name, name)
    if canonical not in COMBINED:
        raise ValueError(f"unknown combined dataset {name!r} (known: {', '.join(COMBINED)})")
    parts = [(part, load_dataset(part, split)) for part in COMBINED[canonical]]
    return concat_datasets(parts, canonical, split)


# --------------------------------------------------------------------------------------------
# registry and resolution

Loader = Callable[..., Dataset]

LOADERS: dict[str, Loader] = {"cpm": load_cpm, "monuseg": load_monuseg, "folder": load_folder}


def _synthetic_he(split: Split = "train", **kwargs: Any) -> Dataset:
    return synthetic_he(split=split, **kwargs)


#: Datasets built in code: name -> factory(split, **options).
BUILTINS: dict[str, Callable[..., Dataset]] = {"synthetic-he": _synthetic_he}


def detect_layout(root: str | Path) -> str:
    """Name of the loader whose layout ``root`` has, or raise DataError."""
    root = Path(root)
    _check_dir(root)
    for base in (root, root / "train", root / "test"):
        if (base / "Images").is_dir() and (base / "Labels").is_dir():
            return "cpm"
        if (base / "images").is_dir() and (base / "labels").is_dir():
            return "folder"
    if any(root.rglob("*.xml")) and any(p.suffix.lower() in (".tif", ".tiff") for p in root.rglob("*")):
        return "monuseg"
    raise DataError(root, "unknown dataset layout: expected Images/+Labels/ (cpm), images/+labels/ (folder) "
                    "or .tif beside .xml (monuseg)")


def load_dataset(name_or_path: str | Path, split: Split = "train", **options: Any) -> Dataset:
    """Load a dataset by name or path.

    Args:
        name_or_path: a built-in name (``synthetic-he``), a known real dataset under the data
            root (``cpm15``, ``cpm17``, ``monuseg``, ``kumar``), a combined dataset
            (``cpm15+cpm17``: both splits joined, names prefixed by source), ``LOADER:PATH`` to force a loader
            (``cpm:/data/cpm17``), or a folder path whose layout is detected.
        split: ``train``, ``test`` or ``all``.
        **options: passed to a built-in dataset's factory (``n``, ``size``, ``seed``).

    Returns:
        A lazily loaded :class:`Dataset` of :class:`Sample`.

    Raises:
        DataError: missing folder, unknown layout, unpaired or unreadable files (one line each).
        ValueError: an unknown split.
    """
    _check_split(split)
    text = str(name_or_path)
    if text in BUILTINS:
        return BUILTINS[text](split=split, **options)
    if options:
        raise ValueError(f"options {sorted(options)} apply only to built-in datasets, not {text!r}")
    if (text in COMBINED or text in COMBINED_ALIASES) and not Path(text).exists():
        return load_combined(text, split)
    loader_name, sep, rest = text.partition(":")
    if sep and loader_name in LOADERS and rest:
        return LOADERS[loader_name](Path(rest).expanduser(), split)
    if text in KNOWN_REAL and not Path(text).exists():
        loader_name, desc = KNOWN_REAL[text]
        root = data_root() / text
        if not root.exists():
            raise DataError(root, f"dataset {text!r} not found ({desc}); place it there, set GBENCH_DATA, "
                            "or pass the folder path")
        return LOADERS[loader_name](root, split, name=text)
    path = Path(text).expanduser()
    if not path.exists():
        known = ", ".join([*BUILTINS, *KNOWN_REAL, *COMBINED])
        raise DataError(path, f"no such folder and not a dataset name (names: {known})")
    return LOADERS[detect_layout(path)](path, split)
