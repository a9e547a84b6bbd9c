"""Training-set specs: parsing, profile scaling with honest labels, locating synthetic folders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gbench.core.errors import DataError
from gbench.core.profiles import DEMO, PAPER, SMOKE
from gbench.segmentation.sets import (
    SyntheticSources,
    parse_synthetic_options,
    parse_train_spec,
    resolve_part,
    scaled_count,
)


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
                         ("R+S10k", ["R", "S10k"]), (" R + S3k ", ["R", "S3k"])]:
        spec = parse_train_spec(text)
        assert [p.token for p in spec.parts] == tokens
    spec = parse_train_spec("R+S10k")
    assert spec.has_real and spec.text == "R+S10k"
    (s,) = spec.synthetic
    assert (s.name, s.count, s.kind, s.paper) == ("S", 10000, "synthetic", True)


def test_names_are_never_parsed() -> None:
    """Trailing digits are part of a name (the trap of issue 23: ``mysynth2`` read as 2 images)."""
    (r, mine) = parse_train_spec("R+mysynth2", named={"mysynth2"}).parts
    assert (mine.name, mine.count, mine.paper) == ("mysynth2", None, False)
    assert parse_train_spec("S500").parts[0].name == "S500"  # a name, not 500 images of S
    spec = parse_train_spec("R+mine:3000+S3k", named=["mine"])
    assert [(p.name, p.count, p.paper) for p in spec.parts] == [("R", None, False), ("mine", 3000, False),
                                                                   ("S", 3000, True)]
    assert parse_train_spec("mine:3k").parts[0].count == 3000
    assert [p.name for p in spec.named] == ["mine"]
    assert parse_train_spec("R+mine:500").slug() == "R+mine@500"


@pytest.mark.parametrize("bad,msg", [("", "empty"), ("R+", "empty part"), ("R+R", "repeats R"),
                                     ("mine:0", "0 images"), ("3k", "not R, S3k, S10k, NAME"),
                                     ("S 3k", "not R, S3k"), ("R:100", "R is the whole train split"),
                                     ("S3k:100", "S3k is a paper set"), ("s3k", "ambiguous: did you mean S3k"),
                                     ("mine+mine:3", "repeats mine"), ("mine:-3", "NAME:COUNT"),
                                     ("mine:x", "NAME:COUNT")])
def test_parse_errors(bad: str, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        parse_train_spec(bad)


def test_unknown_names_are_refused_with_the_named_sets() -> None:
    with pytest.raises(ValueError, match=r"unknown training set 'mysynth' in 'R\+mysynth' \(did you mean 'mysynth2'\?\)"
                                         r".*--synthetic mysynth=DIR"):
        parse_train_spec("R+mysynth", named={"mysynth2"})


@pytest.mark.parametrize("name,msg", [("S3k", "ambiguous"), ("r", "ambiguous"), ("s10K", "ambiguous"),
                                      ("my set", "letters, digits"), ("2mine", "letters, digits"),
                                      ("a:b", "letters, digits")])
def test_bad_set_names(name: str, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        parse_synthetic_options([f"{name}=somewhere"])


def test_synthetic_options() -> None:
    src = parse_synthetic_options(["mine=runs/a", "mysynth2 = runs/b", "runs/synth"])
    assert src.folder == Path("runs/synth")
    assert src.named == (("mine", Path("runs/a")), ("mysynth2", Path("runs/b")))
    with pytest.raises(ValueError, match="names mine more than once"):
        parse_synthetic_options(["mine=a", "mine=b"])
    with pytest.raises(ValueError, match="two folders"):
        parse_synthetic_options(["a", "b"])
    with pytest.raises(ValueError, match="no folder"):
        parse_synthetic_options(["mine="])


def test_scaling_and_labels() -> None:
    s3k, s10k = (parse_train_spec(t).parts[0] for t in ("S3k", "S10k"))
    mine = parse_train_spec("mine:500").parts[0]
    assert (scaled_count(s3k, PAPER), scaled_count(s10k, PAPER)) == (3000, 10000)
    assert (scaled_count(s3k, DEMO), scaled_count(s10k, DEMO)) == (96, 320)
    assert scaled_count(mine, DEMO) == scaled_count(mine, SMOKE) == 500  # an explicit count never scales
    assert scaled_count(parse_train_spec("mine").parts[0], SMOKE) is None
    assert scaled_count(s3k, SMOKE) == 6
    assert parse_train_spec("R").label(DEMO) == "R"
    assert parse_train_spec("S3k").label(DEMO) == "S3k (scaled to 96)"
    assert parse_train_spec("R+S10k").label(DEMO) == "R+S10k (S10k scaled to 320)"
    assert parse_train_spec("R+S3k").label(PAPER) == "R+S3k"
    assert parse_train_spec("R+mine:500").label(DEMO) == "R+mine:500"
    assert parse_train_spec("mysynth2").label(SMOKE) == "mysynth2"


def test_resolve_part_finds_folders_and_counts(tmp_path: Path) -> None:
    write_synthetic_set(tmp_path / "S", 8, size=32)
    write_synthetic_set(tmp_path / "S10k", 13, size=32, seed=5)
    s3k, s10k = (parse_train_spec(t).parts[0] for t in ("S3k", "S10k"))
    r = resolve_part(s3k, SMOKE, tmp_path)  # no tmp/S3k: falls back to tmp/S
    assert Path(r.source) == tmp_path / "S" and r.indices == tuple(range(6)) and r.size == 6
    assert r.dataset.names[:2] == ["syn_0000", "syn_0001"]  # first images in name order
    r = resolve_part(s10k, SMOKE, tmp_path)
    assert Path(r.source) == tmp_path / "S10k" and r.size == 12
    with pytest.raises(DataError, match=r"set 'S10k' holds 8 images; S10k asks for 10000 under profile 'paper'"):
        resolve_part(s10k, PAPER, tmp_path / "S")
    with pytest.raises(DataError, match="no synthetic set for 'S3k'.*gbench synthesize"):
        resolve_part(s3k, SMOKE, tmp_path / "missing")


def test_resolve_named_sets(tmp_path: Path) -> None:
    write_synthetic_set(tmp_path / "mine", 5, size=32)
    src = SyntheticSources(named=(("mysynth2", tmp_path / "mine"),))
    r = resolve_part(parse_train_spec("mysynth2").parts[0], DEMO, src)
    assert r.size == 5 and Path(r.source) == tmp_path / "mine"  # every image, whatever the profile
    assert resolve_part(parse_train_spec("mysynth2:3").parts[0], PAPER, {"mysynth2": tmp_path / "mine"}).size == 3
    with pytest.raises(DataError, match=r"set 'mysynth2' holds 5 images; mysynth2:3k asks for 3000$"):
        resolve_part(parse_train_spec("mysynth2:3k").parts[0], SMOKE, src)
    with pytest.raises(DataError, match="unknown training set 'other'"):
        resolve_part(parse_train_spec("other").parts[0], SMOKE, src)
    with pytest.raises(DataError, match="needs images/ and labels/"):
        resolve_part(parse_train_spec("x").parts[0], SMOKE, {"x": tmp_path / "nowhere"})
