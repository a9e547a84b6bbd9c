"""The data layer: samples, loaders, conditioning maps, patches and nucleus-mask synthesis.

>>> from gbench.data import load_dataset
>>> ds = load_dataset("synthetic-he", split="train", n=2, size=64)
>>> s = ds[0]; s.image.shape, s.instances.dtype
((64, 64, 3), dtype('int32'))
"""
from gbench.data.conditioning import binary_mask, condition, contour_map, distance_map
from gbench.data.loaders import BUILTINS, KNOWN_REAL, LOADERS, data_root, detect_layout, load_dataset
from gbench.data.patches import augment, grid_crops, random_crop
from gbench.data.summary import summarize
from gbench.data.types import Dataset, Sample

__all__ = [
    "Sample", "Dataset", "load_dataset", "LOADERS", "BUILTINS", "KNOWN_REAL", "data_root", "detect_layout",
    "binary_mask", "distance_map", "contour_map", "condition", "random_crop", "grid_crops", "augment",
    "summarize",
]
