"""Reading images and instance maps from disk: read as a viewer shows them, or refused in one line.

Every refusal is a :class:`gbench.core.errors.DataError` naming the file (one line, exit 2 at the
CLI). The rules, for :func:`read_image` (RGB tissue images) and :func:`read_label` (instance maps):

Orientation
    The EXIF orientation of a PNG/JPEG/BMP is applied (``PIL.ImageOps.exif_transpose``) and so is
    the TIFF ``Orientation`` tag (274, same eight codes), so a photo saved rotated with an
    orientation tag reads as it is displayed. Labels get the same treatment as images.
1-bit images
    A 1-bit PNG or bilevel TIFF is an image of 0 and 255 for :func:`read_image` (never a silent
    0/1 image) and a 0/1 mask (one nucleus id) for :func:`read_label`.
Palette images
    :func:`read_image` maps a palette image through its palette (the colours shown).
    :func:`read_label` reads a palette PNG's *indices* as the ids, never the RGB colours (a
    coloured label map saved as a palette keeps one id per colour; a transparent palette entry,
    common for the background, changes nothing).
Alpha
    A fully opaque alpha channel (every value at the maximum of its bit depth) is dropped
    silently. Any real transparency (an alpha value below that, including a PNG ``tRNS``
    transparent colour or palette entry) is *refused* by :func:`read_image`: gbench does not
    composite, because the background a viewer shows behind transparent pixels (white, black,
    a checkerboard) is a choice the scores would silently depend on. Flatten the image and save
    it without alpha. A label map with an alpha channel is refused as not single-channel.
Pages
    A multi-page TIFF is refused (gbench reads one image per file; a stack of grey pages would
    otherwise pass for planar RGB). Only the focus-stack reader of
    :mod:`gbench.data.multifocus` reads pages, through ``_read_array(path)`` with its default
    ``pages=True``. A single-page planar (channels-first) RGB TIFF is read as RGB.
Bit depth
    8-bit images are read as they are. An integer image stored with more bits (16-bit PNG,
    read at full depth with ``pypng`` where Pillow would keep only the high byte; 16- or 32-bit
    TIFF) is accepted only when every value fits 8 bits (0..255, taken as is: an 8-bit image in
    a wider container); otherwise it is refused, because its intensity scale (12-bit camera,
    full 16-bit range, ...) is ambiguous. Float images are refused for the same reason (is
    white 1.0 or 255?). Convert either to 8 bit. Boolean ``.npy`` images read as 0/255.
Label formats
    Labels as JPEG are refused: the lossy format changes label ids (compression invents new
    values along every edge). Labels are PNG/TIFF (single channel, 8, 16 or 32 bit), ``.npy`` or
    MATLAB ``.mat`` (variable ``inst_map``; a MATLAB *sparse* matrix is read densely). A colour
    (RGB) label map is refused: the ids must be stored as numbers, not colours. Float maps must
    hold whole numbers; negative ids are refused. A map that puts one id on several separate
    regions, as a binary (semantic) mask does, gets a ``UserWarning`` saying so: every nucleus
    would count as one instance.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import png
import scipy.io
import scipy.sparse
import tifffile
from PIL import Image, ImageOps
from scipy import ndimage

from gbench.core.errors import DataError
from gbench.core.fileio import atomic_path

__all__ = ["read_image", "read_label", "IMAGE_SUFFIXES", "LABEL_SUFFIXES", "JPEG_SUFFIXES", "write_png"]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
LABEL_SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".mat")
#: Suffixes of a lossy format: never read as labels.
JPEG_SUFFIXES = (".jpg", ".jpeg")

JPEG_LABEL_MESSAGE = ("labels stored as JPEG are refused: the lossy format changes label ids (compression invents "
                      "new values along every edge); save the instance map as PNG, TIFF or .npy")


def read_image(path: str | Path) -> np.ndarray:
    """Read an RGB image as displayed, as (H, W, 3) uint8.

    Follows the module's reading rules: orientation applied, 1-bit as 0/255, palette through
    its palette, an opaque alpha dropped, transparency, multi-page TIFFs, float images and
    integer images beyond 8 bits refused; a grayscale image is replicated to three channels.

    Args:
        path: a PNG, JPEG, BMP or TIFF file (or ``.npy`` array).

    Returns:
        (H, W, 3) uint8 array.

    Raises:
        DataError: missing, unreadable or refused file (one line naming it and the reason).
    """
    path = Path(path)
    arr = _read_array(path, pages=False)
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)  # planar (channels-first) array
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = _drop_alpha(arr, path)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(path, f"expected an RGB image, got an array of shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * np.uint8(255)  # 1-bit: black and white, not 0/1
        elif np.issubdtype(arr.dtype, np.integer) and arr.size and arr.max() <= 255 and arr.min() >= 0:
            arr = arr.astype(np.uint8)
        elif np.issubdtype(arr.dtype, np.integer) and arr.size:
            raise DataError(path, f"expected 8-bit RGB, got a {arr.dtype} image with values up to {int(arr.max())}; "
                                  "convert it to 8 bit (gbench does not guess how to rescale it)")
        elif np.issubdtype(arr.dtype, np.floating):
            lo, hi = (float(np.nanmin(arr)), float(np.nanmax(arr))) if arr.size and np.isfinite(arr).any() else (0.0, 0.0)
            raise DataError(path, f"expected 8-bit RGB, got a {arr.dtype} image (values {lo:g}..{hi:g}); convert it "
                                  "to 8 bit (gbench does not guess whether white is 1.0 or 255)")
        else:
            raise DataError(path, f"expected 8-bit RGB, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


def read_label(path: str | Path, key: str = "inst_map") -> np.ndarray:
    """Read an instance map as (H, W) int32 (0 = background).

    Accepts PNG/TIFF (single channel, 1, 8 or 16 bit, or 32-bit TIFF; a palette PNG gives its
    indices), ``.npy`` and MATLAB ``.mat`` files (variable ``key``, dense or sparse). Float maps
    are accepted only when every value is a whole number; negative ids are rejected; JPEG labels
    are refused (see the module docstring). A map with one id over several separate regions (a
    binary mask) is read, with a ``UserWarning``.

    Raises:
        DataError: missing, unreadable or refused file (one line naming it and the reason).
    """
    path = Path(path)
    if path.suffix.lower() in JPEG_SUFFIXES:
        raise DataError(path, JPEG_LABEL_MESSAGE)
    if path.suffix.lower() == ".mat":
        arr = _read_mat(path, key)
    else:
        arr = _read_array(path, pages=False, label=True)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        what = {2: "gray + alpha", 3: "colour (RGB)", 4: "colour + alpha (RGBA)"}.get(arr.shape[-1]) if arr.ndim == 3 else None
        hint = (f"a {what} image, not an instance map: store the ids as numbers in one channel "
                "(8/16-bit PNG or TIFF, .npy)" if what else "instance map must be single-channel (H, W)")
        raise DataError(path, f"{hint}, got shape {arr.shape}")
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
    inst = np.ascontiguousarray(arr.astype(np.int32))
    _warn_binary_mask(inst, path)
    return inst


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 RGB/gray or uint16 gray array as PNG (atomically)."""


    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


# ---------------------------------------------------------------------------------- helpers

_ORIENTATION_TAG = 0x0112  # 274, in EXIF and in TIFF

#: Orientation codes (EXIF and TIFF tag 274) -> the transform that shows the stored array upright,
#: on the (row, column) axes; the same as ``PIL.ImageOps.exif_transpose`` (tests check both).
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _read_array(path: Path, pages: bool = True, label: bool = False) -> np.ndarray:
    """The stored array, upright, without interpreting channels beyond what the format says.

    Args:
        path: the file.
        pages: read every page of a TIFF (the focus-stack reader's use; no orientation applied);
            False refuses a multi-page TIFF and applies a single page's ``Orientation`` tag.
        label: PIL formats keep palette indices and ignore transparency (label maps); otherwise
            a palette image becomes RGB or RGBA, a 1-bit image 0/255 and a transparent colour
            an alpha channel.
    """
    if not path.is_file():
        raise DataError(path, "file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix in (".tif", ".tiff"):
            if pages:
                return np.asarray(tifffile.imread(path))
            return _read_tiff_page(path)
        if suffix == ".png" and _png_depth_and_colour(path) in ((16, 2), (16, 4), (16, 6)):
            arr = _read_png16(path)  # Pillow would keep only the high byte of each 16-bit colour sample
            with Image.open(path) as im:
                code = int(im.getexif().get(_ORIENTATION_TAG, 1))
            return np.ascontiguousarray(_ORIENT[code](arr)) if code in _ORIENT else arr

        with Image.open(path) as im:
            if label and im.format == "JPEG":
                raise DataError(path, JPEG_LABEL_MESSAGE)
            if im.format not in ("JPEG", "MPO") and getattr(im, "n_frames", 1) > 1:  # MPO: the first is the photo
                raise DataError(path, f"holds {im.n_frames} frames ({im.format}); gbench reads one image per file")
            ImageOps.exif_transpose(im, in_place=True)
            return np.asarray(im if label else _image_mode(im))  # a label keeps palette indices, 1-bit 0/1
    except DataError:
        raise
    except Exception as exc:  # any decoder failure becomes one line naming the file
        raise DataError(path, f"cannot read file ({type(exc).__name__}: {exc})") from None


def _image_mode(im: Image.Image) -> Image.Image:
    """A PIL image in a mode whose array is what a viewer shows (alpha kept for the caller to check)."""
    transparent = "transparency" in im.info
    if im.mode == "1":
        return im.convert("L")  # 0/255
    if im.mode in ("P", "PA"):
        return im.convert("RGBA" if transparent or im.mode == "PA" else "RGB")
    if im.mode in ("L", "RGB") and transparent:
        return im.convert("LA" if im.mode == "L" else "RGBA")
    if im.mode in ("RGBa", "La"):
        return im.convert("RGBA" if im.mode == "RGBa" else "LA")
    if im.mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return im.convert("RGB")
    return im


def _read_tiff_page(path: Path) -> np.ndarray:
    """The one page of a TIFF as (H, W) or (H, W, C), upright; a multi-page TIFF is refused."""
    with tifffile.TiffFile(path) as tif:
        n = len(tif.pages)
        if n > 1:
            raise DataError(path, f"multi-page TIFF ({n} pages): gbench reads one image per file (only focus "
                                  "stacks are read page by page); save each page as its own file")
        page = tif.pages.first
        arr = np.asarray(page.asarray())
        if arr.ndim == 3 and int(page.planarconfig) == 2 and arr.shape[0] == page.samplesperpixel:
            arr = np.moveaxis(arr, 0, -1)  # planar (channels-first) page
        tag = page.tags.get("Orientation")
        code = int(tag.value) if tag is not None else 1
    if code in _ORIENT and arr.ndim >= 2:
        arr = np.ascontiguousarray(_ORIENT[code](arr))
    return arr


def _drop_alpha(arr: np.ndarray, path: Path) -> np.ndarray:
    """(H, W, 2 or 4) -> (H, W, 1 or 3): the alpha dropped if fully opaque, else a refusal."""
    alpha = arr[:, :, -1]
    if arr.dtype == bool:
        opaque: int | bool = True
    elif arr.dtype in (np.uint8, np.uint16):
        opaque = int(np.iinfo(arr.dtype).max)
    elif np.issubdtype(arr.dtype, np.integer):
        opaque = 255 if arr.size and int(arr.max()) <= 255 else int(np.iinfo(arr.dtype).max)
    else:
        return arr[:, :, :-1]  # float: refused by the caller whatever its alpha
    n = int(np.count_nonzero(alpha < opaque))
    if n:
        raise DataError(path, f"has real transparency ({n} of {alpha.size} pixels with alpha below {opaque}); gbench "
                              "does not guess the background a viewer shows behind them: flatten the image "
                              "(e.g. onto white) and save it without alpha")
    return arr[:, :, :-1]


def _warn_binary_mask(inst: np.ndarray, path: Path) -> None:
    """Warn when one id covers several separate regions: a binary mask, not an instance map."""
    if not inst.size:
        return
    mx = int(inst.max())
    if mx == 0:
        return
    fg = inst != 0
    if not np.array_equal(fg, inst == mx):
        return
    n = int(ndimage.label(fg)[1])
    if n > 1:
        warnings.warn(f"{path}: one id ({mx}) covers {n} separate regions: this looks like a binary mask, not an "
                      "instance map, and every nucleus in it counts as one instance; give each nucleus its own id",
                      UserWarning, stacklevel=3)


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
    value = data[key]
    if scipy.sparse.issparse(value):
        return np.asarray(value.toarray())  # a MATLAB sparse matrix: the same ids, stored densely
    return np.asarray(value)
