"""Training-set specs: parsing, profile scaling with honest labels, locating synthetic folders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gbench.core.errors import DataError
from gbench.core.profiles import DEMO, PAPER, SMOKE
from gbench.segmentation.sets import parse_train_spec, resolve_part, scaled_count


def write_synthetic_set(root: Path, n: int, size: int = 64, seed: int = 77) -> Path:
    """A small synthetic set in the folder layout (images/, labels/, manifest.csv), rendered by
    the built-in synthetic-he dataset (independent of the generator code)."""
    from gbench.data.synthetic_he import synthetic_he

    ds = synthetic_he("train", n=n, size=size, seed=seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    lines = ["sample_id,image_path,mask_path"]
    for i, s in enumerate(ds):
        name = f"syn_{i:04d}"
        Image.fromarray(s.image).save(root / "images" / f"{name}.png")
        Image.fromarray(s.instances.astype(np.uint16)).save(root / "labels" / f"{name}.png")
        lines.append(f"{name},images/{name}.png,labels/{name}.png")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root


def test_parse_paper_sets() -> None:
    for text, tokens in [("R", ["R"]), ("S3k", ["S3k"]), ("R+S3k", ["R", "S3k"]), ("S10k", ["S10k"]),
                         ("R+S10k", ["R", "S10k"]), (" R + S500 ", ["R", "S500"]), ("R+S3k+GAN2k", ["R", "S3k", "GAN2k"])]:
        spec = parse_train_spec(text)
        assert [p.token for p in spec.parts] == tokens
    spec = parse_train_spec("R+S10k")
    assert spec.has_real and spec.text == "R+S10k"
    (s,) = spec.synthetic
    assert (s.name, s.count, s.kind) == ("S", 10000, "synthetic")
    assert parse_train_spec("S").parts[0].count is None
    assert parse_train_spec("GAN2k").parts[0].name == "GAN" and parse_train_spec("S250").parts[0].count == 250


@pytest.mark.parametrize("bad,msg", [("", "empty"), ("R+", "empty part"), ("R+R", "repeats R"), ("S0", "0 images"),
                                     ("3k", "not R or NAME"), ("S 3k", "not R or NAME")])
def test_parse_errors(bad: str, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        parse_train_spec(bad)


def test_scaling_and_labels() -> None:
    s3k, s10k, s500 = (parse_train_spec(t).parts[0] for t in ("S3k", "S10k", "S500"))
    assert (scaled_count(s3k, PAPER), scaled_count(s10k, PAPER), scaled_count(s500, PAPER)) == (3000, 10000, 500)
    assert (scaled_count(s3k, DEMO), scaled_count(s10k, DEMO)) == (96, 320)
    assert scaled_count(s500, DEMO) == round(500 * 96 / 3000) == 16
    assert scaled_count(s3k, SMOKE) == 6
    assert parse_train_spec("R").label(DEMO) == "R"
    assert parse_train_spec("S3k").label(DEMO) == "S3k (scaled to 96)"
    assert parse_train_spec("R+S10k").label(DEMO) == "R+S10k (S10k scaled to 320)"
    assert parse_train_spec("R+S3k").label(PAPER) == "R+S3k"
    assert parse_train_spec("S").label(DEMO) == "S"


def test_resolve_part_finds_folders_and_counts(tmp_path: Path) -> None:
    write_synthetic_set(tmp_path / "S", 8, size=32)
    write_synthetic_set(tmp_path / "S10k", 13, size=32, seed=5)
    s3k, s10k = (parse_train_spec(t).parts[0] for t in ("S3k", "S10k"))
    r = resolve_part(s3k, SMOKE, tmp_path)  # no tmp/S3k: falls back to tmp/S
    assert Path(r.source) == tmp_path / "S" and r.indices == tuple(range(6)) and r.size == 6
    assert r.dataset.names[:2] == ["syn_0000", "syn_0001"]  # first images in name order
    r = resolve_part(s10k, SMOKE, tmp_path)
    assert Path(r.source) == tmp_path / "S10k" and r.size == 12
    # the folder itself is a set
    r = resolve_part(parse_train_spec("S5").parts[0], PAPER, tmp_path / "S")
    assert r.size == 5
    with pytest.raises(DataError, match=r"holds 8 images; S10k needs 10000 under profile 'paper'"):
        resolve_part(s10k, PAPER, tmp_path / "S")
    with pytest.raises(DataError, match="no synthetic set for 'GAN2k'.*gbench synthesize"):
        resolve_part(parse_train_spec("GAN2k").parts[0], SMOKE, tmp_path / "missing")
