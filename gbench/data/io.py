"""Reading images and instance maps from disk with one-line errors naming the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import png
import scipy.io
import tifffile
from PIL import Image

from gbench.core.errors import DataError
from gbench.core.fileio import atomic_path

__all__ = ["read_image", "read_label", "IMAGE_SUFFIXES", "LABEL_SUFFIXES", "write_png"]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
LABEL_SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".mat")


def read_image(path: str | Path) -> np.ndarray:
    """Read an RGB image as (H, W, 3) uint8.

    RGBA drops alpha; a grayscale image is replicated to three channels. An image stored with
    more than 8 bits (16-bit PNG, including 16-bit RGB/RGBA, which is read at full depth with
    ``pypng``; 16-bit TIFF) is accepted only when every value fits 8 bits (0..255, taken as is);
    otherwise it is refused, because its intensity scale is ambiguous: convert it to 8 bit.
    """
    path = Path(path)
    arr = _read_array(path)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)  # planar TIFF
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise DataError(path, f"expected an RGB image, got an array of shape {arr.shape}")
    arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        if arr.dtype == bool or (np.issubdtype(arr.dtype, np.integer) and arr.size and arr.max() <= 255 and arr.min() >= 0):
            arr = arr.astype(np.uint8)
        elif np.issubdtype(arr.dtype, np.integer) and arr.size:
            raise DataError(path, f"expected 8-bit RGB, got a {arr.dtype} image with values up to {int(arr.max())}; "
                                  "convert it to 8 bit (gbench does not guess how to rescale it)")
        else:
            raise DataError(path, f"expected 8-bit RGB, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


def read_label(path: str | Path, key: str = "inst_map") -> np.ndarray:
    """Read an instance map as (H, W) int32 (0 = background).

    Accepts PNG/TIFF (single channel, 8 or 16 bit, or 32-bit TIFF), ``.npy`` and MATLAB
    ``.mat`` files (variable ``key``). Float maps are accepted only when every value is a whole
    number; negative ids are rejected.
    """
    path = Path(path)
    if path.suffix.lower() == ".mat":
        arr = _read_mat(path, key)
    else:
        arr = _read_array(path)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise DataError(path, f"instance map must be single-channel (H, W), got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.int32)
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            pass  # whole numbers stored as float (common in .mat files): accepted
        else:
            raise DataError(path, f"instance map must hold integer ids, got dtype {arr.dtype} with fractional or non-finite values")
    if arr.size and arr.min() < 0:
        raise DataError(path, f"instance map has negative ids (min {arr.min()})")
    if arr.size and arr.max() > np.iinfo(np.int32).max:
        raise DataError(path, f"instance map ids exceed int32 (max {arr.max()})")
    return np.ascontiguousarray(arr.astype(np.int32))


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 RGB/gray or uint16 gray array as PNG (atomically)."""


    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def _read_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(path, "file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix in (".tif", ".tiff"):

            return np.asarray(tifffile.imread(path))
        if suffix == ".png" and _png_depth_and_colour(path) in ((16, 2), (16, 4), (16, 6)):
            return _read_png16(path)  # Pillow would keep only the high byte of each 16-bit colour sample

        with Image.open(path) as im:
            if im.mode in ("P", "CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            return np.asarray(im)
    except DataError:
        raise
    except Exception as exc:  # any decoder failure becomes one line naming the file
        raise DataError(path, f"cannot read file ({type(exc).__name__}: {exc})") from None


def _png_depth_and_colour(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR chunk, or None when it is not a PNG."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _read_png16(path: Path) -> np.ndarray:
    """A 16-bit colour (or gray + alpha) PNG at full depth: (H, W, planes) uint16."""

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = int(info["planes"])
    arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows])
    return arr.reshape(height, width, planes)


def _read_mat(path: Path, key: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(path, "file not found")
    try:

        data = scipy.io.loadmat(path)
    except Exception as exc:
        raise DataError(path, f"cannot read MATLAB file ({type(exc).__name__}: {exc})") from None
    if key not in data:
        keys = sorted(k for k in data if not k.startswith("__"))
        raise DataError(path, f"no variable {key!r} in MATLAB file (has: {', '.join(keys) or 'none'})")
    return np.asarray(data[key])
