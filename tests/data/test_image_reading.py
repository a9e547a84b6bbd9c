"""Images are read as they are shown (issue 26): orientation, 1-bit, alpha, pages, layouts, labels, depth.

Each file is built here with PIL, tifffile or numpy; references are Pillow's own
``ImageOps.exif_transpose`` / palette conversion and scikit-image's SSIM.
"""
from __future__ import annotations

import csv
import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse
import tifffile
from PIL import Image, ImageOps
from scipy import ndimage
from skimage.metrics import structural_similarity

from gbench.core.errors import DataError
from gbench.data import load_dataset
from gbench.data.io import read_image, read_label
from tests.conftest import random_disks
from tests.data.test_loaders import write_folder, write_monuseg

ORIENTATION = 0x0112  # EXIF / TIFF tag 274


def texture(shape: tuple[int, int] = (48, 48), seed: int = 0) -> np.ndarray:
    """A smooth RGB texture (uint8): structure that a rotation destroys, that JPEG keeps."""
    noise = np.random.default_rng(seed).normal(size=(*shape, 3))
    smooth = ndimage.gaussian_filter(noise, sigma=(2, 2, 0))
    return np.clip(128 + 60 * smooth / smooth.std(), 0, 255).astype(np.uint8)


def save_with_orientation(path: Path, stored: np.ndarray, code: int, **kwargs: object) -> None:
    exif = Image.Exif()
    exif[ORIENTATION] = code
    Image.fromarray(stored).save(path, exif=exif, **kwargs)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def one_line_naming(exc: pytest.ExceptionInfo[DataError], path: Path) -> str:
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg
    return msg


# ------------------------------------------------------------------------------ 1. orientation

@pytest.mark.parametrize("code", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, code: int) -> None:
    """PNG with an EXIF orientation reads as Pillow's exif_transpose shows it; TIFF tag 274 too."""
    stored = texture((12, 20))  # not square: a wrong transform changes the shape
    save_with_orientation(tmp_path / "o.png", stored, code)
    with Image.open(tmp_path / "o.png") as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    got = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(got, expected)
    assert got.shape == ((20, 12, 3) if code >= 5 else (12, 20, 3))
    tifffile.imwrite(tmp_path / "o.tif", stored, photometric="rgb", extratags=[(274, "H", 1, code, True)])
    np.testing.assert_array_equal(read_image(tmp_path / "o.tif"), expected)
    # labels get the same transform as their image
    lab = random_disks((12, 20), 3, rmin=2, rmax=4).astype(np.uint8)
    save_with_orientation(tmp_path / "l.png", lab, code)
    with Image.open(tmp_path / "l.png") as im:
        np.testing.assert_array_equal(read_label(tmp_path / "l.png"), np.asarray(ImageOps.exif_transpose(im)))


def test_16_bit_png_orientation(tmp_path: Path) -> None:
    """The 16-bit colour PNG path (pypng, full depth) applies the EXIF orientation too."""
    import struct
    import zlib

    stored = texture((6, 9)).astype(np.uint16)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in stored)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 9, 6, 16, 2, 0, 0, 0)
    tiff = exif.tobytes()[6:]  # without the JPEG "Exif\0\0" prefix
    (tmp_path / "e.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"eXIf", tiff)
                                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    with Image.open(tmp_path / "e.png") as im:
        assert im.getexif().get(ORIENTATION) == 6
    np.testing.assert_array_equal(read_image(tmp_path / "e.png"), np.rot90(stored, -1).astype(np.uint8))


def test_rotated_jpeg_scores_like_the_real_one(tmp_path: Path) -> None:
    """A JPEG stored rotated with orientation 6 displays as the real image: SSIM near 1, not ~0.2."""
    real = texture()
    save_with_orientation(tmp_path / "fake.jpg", np.rot90(real, 1), 6, quality=95)
    with Image.open(tmp_path / "fake.jpg") as im:
        raw = np.asarray(im.convert("RGB"))  # what the reader returned before: the stored pixels
    assert ssim(raw, real) < 0.5
    assert ssim(read_image(tmp_path / "fake.jpg"), real) > 0.95


# ------------------------------------------------------------------------------ 2. 1-bit

def test_one_bit_png_is_0_255_image_and_0_1_mask(tmp_path: Path) -> None:
    mask = random_disks((24, 24), 1, rmin=5, rmax=6) > 0
    Image.fromarray(mask).save(tmp_path / "m.png")  # mode "1"
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "1"
    img = read_image(tmp_path / "m.png")
    assert img.dtype == np.uint8 and set(np.unique(img)) == {0, 255}
    np.testing.assert_array_equal(img[:, :, 0] == 255, mask)
    lab = read_label(tmp_path / "m.png")
    np.testing.assert_array_equal(lab, mask.astype(np.int32))
    # a bilevel TIFF and a boolean .npy image: 0/255 as well
    tifffile.imwrite(tmp_path / "m.tif", mask)
    np.testing.assert_array_equal(read_image(tmp_path / "m.tif"), img)
    np.save(tmp_path / "m.npy", mask)
    np.testing.assert_array_equal(read_image(tmp_path / "m.npy"), img)


# ------------------------------------------------------------------------------ 3. alpha

def test_alpha_transparent_refused_opaque_dropped(tmp_path: Path) -> None:
    rgb = texture((16, 16))
    Image.fromarray(np.dstack([rgb, np.full((16, 16), 255, np.uint8)])).save(tmp_path / "opaque.png")
    np.testing.assert_array_equal(read_image(tmp_path / "opaque.png"), rgb)
    alpha = np.full((16, 16), 255, np.uint8)
    alpha[:4, :4] = 0
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "cut.png")
    with pytest.raises(DataError) as exc:
        read_image(tmp_path / "cut.png")
    assert "transparency (16 of 256 pixels" in one_line_naming(exc, tmp_path / "cut.png")
    # gray + alpha, a palette with a transparent entry, a TIFF with alpha: the same rule
    gray = rgb[:, :, 0]
    Image.fromarray(np.dstack([gray, alpha]), mode="LA").save(tmp_path / "la.png")
    Image.fromarray(np.dstack([gray, np.full_like(gray, 255)]), mode="LA").save(tmp_path / "la_opaque.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la_opaque.png"), np.repeat(gray[:, :, None], 3, 2))
    pal = Image.fromarray(rgb).quantize(8)
    pal.save(tmp_path / "p.png", transparency=0)
    tifffile.imwrite(tmp_path / "a.tif", np.dstack([rgb, alpha]), photometric="rgb", extrasamples=["unassalpha"])
    for name in ("la.png", "p.png", "a.tif"):
        with pytest.raises(DataError, match="transparency"):
            read_image(tmp_path / name)
    tifffile.imwrite(tmp_path / "a.tif", np.dstack([rgb, np.full_like(alpha, 255)]), photometric="rgb",
                     extrasamples=["unassalpha"])
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), rgb)


# ------------------------------------------------------------------------------ 4. pages

def test_multipage_tiff_refused_but_focus_stacks_read(tmp_path: Path) -> None:
    from gbench.data.multifocus import read_stack, write_stack

    pages = np.random.default_rng(0).integers(0, 256, (3, 10, 12), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="minisblack")  # one series of 3 gray pages
    assert np.asarray(tifffile.imread(tmp_path / "pages.tif")).shape == (3, 10, 12)  # passed for planar RGB before
    with tifffile.TiffWriter(tmp_path / "loose.tif") as tw:  # 3 separate pages
        for p in pages:
            tw.write(p, photometric="minisblack")
    assert np.asarray(tifffile.imread(tmp_path / "loose.tif")).shape == (10, 12)  # only the first page before
    for name in ("pages.tif", "loose.tif"):
        for reader in (read_image, read_label):
            with pytest.raises(DataError) as exc:
                reader(tmp_path / name)
            assert "multi-page TIFF (3 pages)" in one_line_naming(exc, tmp_path / name)
    # a single-page planar RGB TIFF is still one RGB image
    rgb = texture((10, 12))
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif"), rgb)
    # the focus-stack reader expects pages and still reads them
    stack = np.random.default_rng(1).integers(0, 256, (11, 8, 8, 3), dtype=np.uint8)
    write_stack(tmp_path / "stack.tif", stack)
    np.testing.assert_array_equal(read_stack(tmp_path / "stack.tif"), stack)


# ------------------------------------------------------------------------------ 5. layouts

def test_images_in_sub_folders_are_named(tmp_path: Path) -> None:
    write_folder(tmp_path, ["a", "b"])
    (tmp_path / "images" / "more").mkdir()
    Image.fromarray(texture((32, 40))).save(tmp_path / "images" / "more" / "c.png")
    with pytest.raises(DataError) as exc:
        load_dataset(tmp_path, split="all")
    assert "sub-folder(s) more/" in one_line_naming(exc, tmp_path / "images")
    (tmp_path / "images" / "more" / "c.png").unlink()  # an empty or hidden sub-folder is fine
    (tmp_path / "images" / ".cache").mkdir()
    Image.fromarray(texture((32, 40))).save(tmp_path / "images" / ".cache" / "x.png")
    assert load_dataset(tmp_path, split="all").names == ["a", "b"]


def test_split_csv_row_without_files(tmp_path: Path) -> None:
    write_folder(tmp_path, ["a", "b"])
    rows = [["name", "split"], ["a", "train"], ["b", "test"], ["ghost", "test"]]
    with open(tmp_path / "split.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(DataError) as exc:
        load_dataset(tmp_path, split="train")
    msg = one_line_naming(exc, tmp_path / "split.csv")
    assert "line 4: row 'ghost' has no files" in msg
    with open(tmp_path / "split.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows[:3])
    assert load_dataset(tmp_path, split="test").names == ["b"]


def test_monuseg_stem_in_train_and_test(tmp_path: Path) -> None:
    write_monuseg(tmp_path / "MoNuSeg Training Data")
    write_monuseg(tmp_path / "MoNuSegTestData", stem="TCGA-YY")
    assert len(load_dataset(f"monuseg:{tmp_path}", split="all")) == 2
    write_monuseg(tmp_path / "MoNuSegTestData")  # TCGA-XX now in both
    with pytest.raises(DataError) as exc:
        load_dataset(f"monuseg:{tmp_path}", split="test")
    msg = str(exc.value)
    assert "'TCGA-XX' appears twice (in both a train and a test folder)" in msg and "\n" not in msg
    assert str(tmp_path / "MoNuSeg Training Data" / "TCGA-XX.tif") in msg
    assert str(tmp_path / "MoNuSegTestData" / "TCGA-XX.tif") in msg


# ------------------------------------------------------------------------------ 6. labels

def test_palette_label_reads_indices_not_colours(tmp_path: Path) -> None:
    inst = random_disks((32, 32), 6).astype(np.uint8)
    im = Image.fromarray(inst, mode="L").convert("P")
    palette = np.random.default_rng(3).integers(0, 256, 768, dtype=np.uint8)
    im.putpalette(palette.tolist())
    im.save(tmp_path / "p.png", transparency=0)
    with Image.open(tmp_path / "p.png") as check:
        assert check.mode == "P"
    np.testing.assert_array_equal(read_label(tmp_path / "p.png"), inst)
    # the image reader shows the colours (Pillow's palette conversion is the reference)
    Image.fromarray(inst, mode="L").convert("P").save(tmp_path / "q.png")
    with Image.open(tmp_path / "q.png") as ref:
        np.testing.assert_array_equal(read_image(tmp_path / "q.png"), np.asarray(ref.convert("RGB")))


def test_jpeg_labels_refused_with_reason(tmp_path: Path) -> None:
    inst = (random_disks((32, 40), 6) * 20).astype(np.uint8)
    Image.fromarray(inst).save(tmp_path / "l.jpg")
    with pytest.raises(DataError) as exc:
        read_label(tmp_path / "l.jpg")
    assert "lossy format changes label ids" in one_line_naming(exc, tmp_path / "l.jpg")
    # a JPEG under a .png name is refused as well
    Image.fromarray(inst).save(tmp_path / "l.png", format="JPEG")
    with pytest.raises(DataError, match="lossy format changes label ids"):
        read_label(tmp_path / "l.png")
    # in a folder dataset: named, not "image without a label"
    write_folder(tmp_path / "ds", ["a"])
    (tmp_path / "ds" / "labels" / "a.png").unlink()
    Image.fromarray(inst).save(tmp_path / "ds" / "labels" / "a.jpg")
    with pytest.raises(DataError) as exc:
        load_dataset(tmp_path / "ds", split="all")
    assert "lossy format changes label ids" in one_line_naming(exc, tmp_path / "ds" / "labels" / "a.jpg")


def test_sparse_and_binary_labels(tmp_path: Path) -> None:
    inst = random_disks((24, 30), 5).astype(np.int32)
    scipy.io.savemat(tmp_path / "s.mat", {"inst_map": scipy.sparse.csc_matrix(inst.astype(np.float64))})
    assert scipy.sparse.issparse(scipy.io.loadmat(tmp_path / "s.mat")["inst_map"])
    np.testing.assert_array_equal(read_label(tmp_path / "s.mat"), inst)
    # one id over several separate nuclei: a binary mask, said so
    Image.fromarray(((inst > 0) * 255).astype(np.uint8)).save(tmp_path / "b.png")
    n = ndimage.label(inst > 0)[1]
    assert n > 1
    with pytest.warns(UserWarning, match=rf"b\.png: one id \(255\) covers {n} separate regions: this looks like a binary mask"):
        lab = read_label(tmp_path / "b.png")
    assert set(np.unique(lab)) == {0, 255}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a proper instance map is read without a word
        read_label(tmp_path / "s.mat")
    Image.fromarray(np.dstack([inst.astype(np.uint8)] * 3)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"rgb\.png: a colour \(RGB\) image, not an instance map"):
        read_label(tmp_path / "rgb.png")


# ------------------------------------------------------------------------------ 7. depth

def test_16_bit_and_float_images_explicit(tmp_path: Path) -> None:
    low = texture((8, 8))[:, :, 0].astype(np.uint16)
    Image.fromarray(low).save(tmp_path / "low16.png")  # fits 8 bit: taken as is
    np.testing.assert_array_equal(read_image(tmp_path / "low16.png"), np.repeat(low[:, :, None], 3, 2).astype(np.uint8))
    Image.fromarray(low * 257).save(tmp_path / "full16.png")
    with pytest.raises(DataError, match=r"full16\.png: expected 8-bit RGB, got a uint16 image with values up to"):
        read_image(tmp_path / "full16.png")
    tifffile.imwrite(tmp_path / "f.tif", np.random.default_rng(0).random((8, 8, 3), dtype=np.float32), photometric="rgb")
    with pytest.raises(DataError) as exc:
        read_image(tmp_path / "f.tif")
    assert "got a float32 image (values 0" in one_line_naming(exc, tmp_path / "f.tif")
    assert "whether white is 1.0 or 255" in str(exc.value)
    Image.fromarray(np.full((8, 8), 0.5, np.float32), mode="F").save(tmp_path / "f32.tif")
    with pytest.raises(DataError, match="float32"):
        read_image(tmp_path / "f32.tif")


# ------------------------------------------------------------------------------ end to end

def _quality(tmp_path: Path, real: np.ndarray, save_fake) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    from tests.cli.test_cli import invoke

    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir(exist_ok=True)
    Image.fromarray(real).save(tmp_path / "real" / "a.png")
    save_fake(tmp_path / "fake")
    result = invoke("quality", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
                    "--out", str(tmp_path / "out"), "--metric", "ssim")
    return result.exit_code, result.stdout + result.stderr


def test_cli_quality_applies_exif(tmp_path: Path) -> None:
    real = texture()
    code, text = _quality(tmp_path, real, lambda d: save_with_orientation(d / "a.jpg", np.rot90(real, 1), 6, quality=95))
    assert code == 0, text
    with open(tmp_path / "out" / "per_image.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and float(rows[0]["ssim"]) > 0.95


def test_cli_quality_refuses_transparency(tmp_path: Path) -> None:
    real = texture()
    alpha = np.full(real.shape[:2], 255, np.uint8)
    alpha[10:20, 10:20] = 128
    fake = tmp_path / "fake" / "a.png"
    code, text = _quality(tmp_path, real, lambda d: Image.fromarray(np.dstack([real, alpha])).save(d / "a.png"))
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, text
    assert str(fake) in lines[0] and "transparency" in lines[0] and "Traceback" not in text
    assert not (tmp_path / "out" / "per_image.csv").exists()


# ------------------------------------------------------------------------------ real data

def test_shared_data_reads_unchanged(shared_data: Path) -> None:
    """CPM-15 and MoNuSeg read as before these rules (shapes, nucleus counts, content hashes)."""
    expected = {
        ("cpm15", "test", "image_05"): ((392, 459, 3), 255, "cbb542509dffe03d"),
        ("cpm15", "train", "image_00"): ((488, 643, 3), 351, "703782241858d96c"),
        ("monuseg", "test", "TCGA-A6-6782-01A-01-BS1"): ((1000, 1000, 3), 441, "bfb48b03004dd41a"),
    }
    for (name, split, stem), (shape, n_max, digest) in expected.items():
        ds = load_dataset(shared_data / name, split=split)
        s = ds[ds.names.index(stem)]
        assert s.image.shape == shape and int(s.instances.max()) == n_max
        assert hashlib.sha256(s.image.tobytes() + s.instances.tobytes()).hexdigest()[:16] == digest


def test_cli_data_inspect_names_layout_problems(tmp_path: Path) -> None:
    from tests.cli.test_cli import invoke

    write_folder(tmp_path / "ds", ["a", "b"])
    (tmp_path / "ds" / "images" / "extra").mkdir()
    Image.fromarray(texture((32, 40))).save(tmp_path / "ds" / "images" / "extra" / "c.png")
    result = invoke("data", "inspect", str(tmp_path / "ds"), "--split", "all", "--out", str(tmp_path / "out"))
    text = (result.stdout + result.stderr).strip()
    assert result.exit_code == 2 and len(text.splitlines()) == 1, text
    assert str(tmp_path / "ds" / "images") in text and "sub-folder(s) extra/" in text
