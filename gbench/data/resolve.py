"""Datasets by name and profile: a built-in one is sized by the profile and drawn from a data seed."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from gbench.core.errors import DataError
from gbench.core.observations import hash_test_set
from gbench.core.profiles import Profile
from gbench.core.registry import BUILTIN, Registry
from gbench.data.loaders import BUILTINS, KNOWN_REAL, load_dataset
from gbench.data.multifocus import load_multifocus
from gbench.data.synthetic_cells import synthetic_cells
from gbench.data.types import Dataset

__all__ = ["resolve_dataset", "split_hash", "load_stacks", "DATASETS", "is_plugin_dataset"]

#: Datasets by name: the built-in names (``synthetic-he`` and the real datasets known by name,
#: source ``built-in``, loaded by :func:`gbench.data.loaders.load_dataset`) and plugins'
#: ``factory(split) -> Dataset`` (``gbench.api.register_dataset``, entry points ``gbench.datasets``).
#: A plugin name equal to a built-in one is refused.
DATASETS: Registry[Any] = Registry("dataset", group="gbench.datasets")
for _name in (*BUILTINS, *KNOWN_REAL):
    DATASETS.register(_name, load_dataset, source=BUILTIN)


def is_plugin_dataset(name: str) -> bool:
    """Whether ``name`` is a dataset registered by a plugin."""
    return name in DATASETS and DATASETS.source(name) != BUILTIN


def _plugin_dataset(name: str, split: str) -> Dataset:
    factory = DATASETS.get(name)
    source = DATASETS.source(name)
    try:
        ds = factory(split=split)
    except (DataError, ValueError, FileNotFoundError):
        raise
    except Exception as exc:  # the plugin's own code: one line naming it
        first = (str(exc).strip().splitlines() or ["(no message)"])[0]
        raise ValueError(f"dataset {name!r} ({source}) failed to load its {split} split: "
                         f"{type(exc).__name__}: {first}") from None
    if not isinstance(ds, Dataset):
        raise ValueError(f"dataset {name!r} ({source}) returned a {type(ds).__qualname__}, not a gbench Dataset")
    return ds


def resolve_dataset(name: str, split: str, profile: Profile, data_seed: int = 0) -> Dataset:
    """Load a dataset; built-in ones are sized by the profile's ``data`` section and drawn from ``data_seed``.

    ``data_seed`` picks *which* built-in tiles, crops and masks exist; it is never the training
    seed (initialisation, order, augmentation), so runs with different training seeds are
    tested on the same images. Real datasets ignore it.
    """
    sizes = profile.data
    if name not in BUILTINS and not Path(name).expanduser().exists() and is_plugin_dataset(name):
        return _plugin_dataset(name, split)
    if name in BUILTINS:
        n = sizes.builtin_test if split == "test" else sizes.builtin_train
        if split == "all":
            n = None
        return load_dataset(name, split=split, n=n, size=sizes.builtin_size, seed=data_seed)  # type: ignore[arg-type]
    return load_dataset(name, split=split)  # type: ignore[arg-type]


_TEST_SET_HASHES: dict[tuple[Any, ...], str] = {}


def split_hash(name: str, split: str, profile: Profile, data_seed: int = 0,
                  dataset: Dataset | None = None) -> str:
    """:func:`gbench.core.observations.hash_test_set` of a dataset split, once per process.

    The hash covers every sample's name, image and instance map, so two results carry the same
    hash exactly when they were scored on the same images and labels. It is cached per
    (dataset, split, data_seed and, for a built-in, the profile's sizes); ``dataset`` (the same
    split, already loaded) saves loading it again.
    """
    if name in BUILTINS:
        sizes = profile.data
        key: tuple[Any, ...] = (name, split, int(data_seed), sizes.builtin_train, sizes.builtin_test, sizes.builtin_size)
    else:
        key = (str(Path(name).expanduser().resolve()) if Path(name).expanduser().exists() else name, split)
    if key not in _TEST_SET_HASHES:
        ds = dataset if dataset is not None else resolve_dataset(name, split, profile, data_seed)
        _TEST_SET_HASHES[key] = hash_test_set((s.name, s.image, s.instances) for s in ds)
    return _TEST_SET_HASHES[key]


def load_stacks(name_or_path: str | Path, split: Literal["train", "test", "all"] = "train", **options: Any) -> Dataset:
    """Load focus stacks by name: ``synthetic-cells[:TYPE]``, ``multifocus:PATH`` or a folder path.

    Args:
        name_or_path: ``synthetic-cells`` (SiHa-like), ``synthetic-cells:siha``,
            ``synthetic-cells:cancer``, ``multifocus:/data/cells`` or ``/data/cells``.
        split: ``train``, ``test`` or ``all``.
        **options: built-in options (``n``, ``size``, ``seed``) for ``synthetic-cells``;
            ``planes`` / ``size`` checks for folders.

    Raises:
        DataError: missing folder or bad files. ValueError: unknown cell type, split or option.
    """
    text = str(name_or_path)
    if text == "synthetic-cells" or text.startswith("synthetic-cells:"):
        cell_type = text.partition(":")[2] or "siha"
        return synthetic_cells(cell_type, split=split, **options)
    if text.startswith("multifocus:"):
        text = text[len("multifocus:"):]
    unknown = sorted(set(options) - {"planes", "size"})
    if unknown:
        raise ValueError(f"options {unknown} apply only to the built-in synthetic-cells, not {text!r}")
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(path, "no such folder and not a built-in (synthetic-cells:siha, synthetic-cells:cancer)")
    return load_multifocus(path, split, name=str(name_or_path), **options)


# ---------------------------------------------------------------------------------- augmentation

#: The MI-GAN paper's augmentation: the original, rotations by 90, 180, 270 degrees and the
#: up-down and left-right mirror flips (1,100 SiHa stacks -> 6,600).
