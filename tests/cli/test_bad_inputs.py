"""A bad-input corpus run through every command (issue 12): for each case exit 2, no traceback, a
message naming the file or option, and nothing written or changed in the output folder.

The corpus (bad images, labels, annotations, CSVs, checkpoints, existing runs) is built in a temp
folder by the ``corpus`` fixture; nothing binary is committed. The cases fail fast: none of them
trains anything (the point of most of them is that the check comes before the work).
"""
from __future__ import annotations

import hashlib
import json
import math
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.cli.test_cli import invoke
from tests.conftest import random_disks
from tests.data.test_loaders import XML_TEMPLATE, _region, write_folder

# ------------------------------------------------------------------------------------ helpers


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``gbench ARGS`` through typer's ``CliRunner`` (:func:`tests.cli.test_cli.invoke`): (exit
    code, stdout, stderr). The fixtures are not used (kept for the callers)."""
    result = invoke(*args)
    return result.exit_code, result.stdout, result.stderr


def snapshot(path: Path) -> object:
    """What a path holds: None (absent), a file's sha256, or {relative path: sha256} of a folder."""
    if not path.exists():
        return None
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(path.rglob("*"))}


def write_png16(path: Path, arr: np.ndarray) -> None:
    """A 16-bit RGB PNG (Pillow cannot write one): filter 0 scanlines, zlib, CRCs."""
    h, w, c = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_split_dataset(root: Path, shape: tuple[int, int] = (64, 64)) -> None:
    write_folder(root / "train", ["a", "b", "c"], shape=shape)
    write_folder(root / "test", ["d", "e"], shape=shape)


@dataclass
class Corpus:
    root: Path
    ds: Path              # a good folder dataset (train/ and test/)
    ds_other: Path        # another good one (different images)
    bad_test_label: Path  # train fine, one test label of the wrong shape
    bad_label_file: Path
    latin1: Path          # flat folder whose split.csv is Latin-1
    png16: Path           # folder dataset whose image is 16-bit RGB above 255
    png16_file: Path
    mon_nan: Path
    mon_oob: Path
    afile: Path           # an existing plain file
    real: Path
    fake: Path
    black_real: Path      # real/ folder with an all-black image
    black_file: Path
    real16: Path
    records: Path
    nan_records: Path
    garbage_csv: Path
    run: Path             # a finished `train-gen dummy` run
    checkpoint: Path
    sharp_checkpoint: Path
    synth_set: Path       # a finished synthetic set
    synth_bad: Path       # a synthetic set with an unreadable image
    report: Path          # a finished report


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    import torch

    from gbench.core.records import save_records
    from gbench.pipelines.synthesis import synthesize
    from gbench.generators.train import train_generator
    from tests.generators.test_train import TINY, tiles
    from tests.reports.fixtures import fixed_records

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("corpus")
    ds = root / "ds"
    write_split_dataset(ds)
    ds_other = root / "ds_other"
    write_split_dataset(ds_other, shape=(64, 72))

    bad = root / "bad_test_label"
    write_split_dataset(bad)
    bad_label = bad / "test" / "labels" / "e.png"
    Image.fromarray(np.zeros((10, 10), np.uint16)).save(bad_label)  # shape differs from its image

    latin1 = root / "latin1"
    write_folder(latin1, ["caf\u00e9", "b"], shape=(32, 32))
    (latin1 / "split.csv").write_bytes("name,split\ncaf\u00e9,train\nb,test\n".encode("latin-1"))

    png16 = root / "png16"
    write_folder(png16, ["a"], shape=(16, 16))
    png16_file = png16 / "images" / "a.png"
    write_png16(png16_file, np.full((16, 16, 3), 40000, np.uint16))

    def monuseg(name: str, regions: str) -> Path:
        import tifffile

        folder = root / name
        folder.mkdir()
        tifffile.imwrite(folder / "t.tif", np.full((30, 30, 3), 200, np.uint8))
        (folder / "t.xml").write_text(XML_TEMPLATE.format(regions=regions))
        return folder

    square = [(2, 2), (12, 2), (12, 12), (2, 12)]
    mon_nan = monuseg("mon_nan", _region(1, square) + _region(2, [(3, 3), ("nan", 5), (9, 9)]))
    mon_oob = monuseg("mon_oob", _region(1, square) + _region(2, [(5, 5), (25, 5), (1e6, 1e6)]))

    afile = root / "afile.txt"
    afile.write_text("not a folder\n")

    real, fake, black, real16 = root / "real", root / "fake", root / "black_real", root / "real16"
    for folder in (real, fake, black, real16):
        folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(real / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(fake / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(black / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(real16 / f"{i}.png")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(black / "1.png")
    write_png16(real16 / "1.png", rng.integers(0, 65536, (32, 32, 3)).astype(np.uint16))

    records = save_records(fixed_records(), root / "records" / "records.csv")
    nan_records = save_records(fixed_records().assign(value=math.nan), root / "nan" / "nan.csv")
    garbage = root / "garbage.csv"
    garbage.write_bytes(bytes(range(256)) * 4)

    run_dir = root / "run"
    res = train_generator("dummy", str(ds), run_dir, profile="smoke", seed=0, steps=2, progress=False)
    sharp = train_generator("sharp-gan", "tiles", root / "sharp", profile="smoke", seed=0, steps=1, overrides=TINY,
                            progress=False, dataset=tiles(2))
    synth_set = root / "synth" / "S3k"
    synthesize("dummy", res.checkpoint, 6, synth_set, seed=0, profile="smoke", progress=False)
    synth_bad = root / "synth_bad" / "S3k"
    synthesize("dummy", res.checkpoint, 6, synth_bad, seed=0, profile="smoke", progress=False)
    next((synth_bad / "images").glob("*.png")).write_bytes(b"not a png")
    report = root / "report"  # stands for any finished output folder
    report.mkdir()
    (report / "manifest.json").write_text('{"format": "gbench-report", "files": ["report.html"]}\n')
    (report / "report.html").write_text("<html></html>\n")
    torch.set_num_threads(n_threads)
    return Corpus(root, ds, ds_other, bad, bad_label, latin1, png16, png16_file, mon_nan, mon_oob, afile, real,
                  fake, black, black / "1.png", real16, records, nan_records, garbage, run_dir,
                  res.checkpoint, sharp.checkpoint, synth_set, synth_bad, report)


# ---------------------------------------------------------------------------------- the cases

#: id -> (arguments, fragments the message must hold, paths that must not change). Arguments and
#: paths name corpus attributes as "{name}" (and "{root}" for new paths under the corpus).
CASES: dict[str, tuple[list[str], list[str], list[str]]] = {
    # usage errors: click's short usage message, exit 2
    "unknown-option": (["quality", "--metrics", "fid"], ["No such option: --metrics", "--metric"], []),
    "unknown-command": (["nosuchcmd"], ["No such command 'nosuchcmd'"], []),
    "did-you-mean": (["qualty"], ["Did you mean 'quality'"], []),
    "missing-value": (["segment", "--seeds"], ["--seeds", "requires an argument"], []),
    "wrong-type": (["segment", "--max-steps", "abc"], ["--max-steps"], []),
    "wrong-type-train": (["train-gen", "dummy", "--data", "{ds}", "--out", "{root}/new", "--steps", "x"], ["--steps"],
                         ["{root}/new"]),
    "missing-argument": (["regress"], ["Missing argument"], []),
    # data inspect / preview
    "inspect-out-file": (["data", "inspect", "{ds}", "--out", "{afile}"], ["afile.txt", "--out"], ["{afile}"]),
    "inspect-out-under-file": (["data", "inspect", "{ds}", "--out", "{afile}/x"], ["afile.txt", "is a file"], ["{afile}"]),
    "inspect-out-nonempty": (["data", "inspect", "{ds}", "--out", "{report}"], ["report", "--overwrite"], ["{report}"]),
    "inspect-split-latin1": (["data", "inspect", "{latin1}", "--split", "train", "--out", "{root}/new"],
                             ["split.csv", "UTF-8"], ["{root}/new"]),
    "inspect-png16": (["data", "inspect", "{png16}", "--split", "all", "--out", "{root}/new"],
                      ["a.png", "8-bit", "40000"], ["{root}/new"]),
    "inspect-monuseg-nan": (["data", "inspect", "{mon_nan}", "--split", "all"], ["t.xml", "region 2", "non-finite"], []),
    "inspect-monuseg-outside": (["data", "inspect", "{mon_oob}", "--split", "all"], ["t.xml", "region 2", "outside"],
                                []),
    "preview-o-folder": (["data", "preview", "{ds}", "-o", "{report}"], ["-o/--output", "folder"], ["{report}"]),
    "preview-o-under-file": (["data", "preview", "{ds}", "-o", "{afile}/sheet.png"], ["afile.txt", "is a file"],
                             ["{afile}"]),
    "preview-crop-negative": (["data", "preview", "{ds}", "--split", "train", "-o", "{root}/s.png", "--crop", "-5"],
                              ["--crop", "-5"], ["{root}/s.png"]),
    "preview-count-zero": (["data", "preview", "{ds}", "-o", "{root}/s.png", "-n", "0"], ["--count"], ["{root}/s.png"]),
    # quality
    "quality-out-file": (["quality", "--real", "{real}", "--fake", "{fake}", "--out", "{afile}"], ["afile.txt"],
                         ["{afile}"]),
    "quality-out-nonempty": (["quality", "--real", "{real}", "--fake", "{fake}", "--out", "{report}"],
                             ["--overwrite"], ["{report}"]),
    "quality-black-real": (["quality", "--real", "{black_real}", "--fake", "{fake}", "--out", "{root}/new"],
                           ["1.png", "all black", "NRMSE"], ["{root}/new"]),
    "quality-png16": (["quality", "--real", "{real16}", "--fake", "{fake}", "--out", "{root}/new"],
                      ["1.png", "8-bit"], ["{root}/new"]),
    "quality-unknown-metric": (["quality", "--real", "{real}", "--fake", "{fake}", "--metric", "fid"],
                               ["--metric", "fid", "ssim"], []),
    "quality-batch-zero": (["quality", "--real", "{real}", "--fake", "{fake}", "--batch-size", "0"], ["--batch-size"],
                           []),
    # report and regress
    "report-out-file": (["report", "{records}", "--out", "{afile}"], ["afile.txt"], ["{afile}"]),
    "report-out-nonempty": (["report", "{records}", "--out", "{report}"], ["report", "--overwrite"], ["{report}"]),
    "report-reference-garbage": (["report", "{records}", "--out", "{root}/new", "--reference", "{garbage_csv}"],
                                 ["garbage.csv"], ["{root}/new"]),
    "regress-tolerance-inf": (["regress", "{records}", "{records}", "-t", "pq=inf"], ["pq=inf", "finite"], []),
    "regress-tolerance-unknown": (["regress", "{records}", "{records}", "-t", "unknown=0.1"], ["unknown", "pq"], []),
    "regress-nan-baseline": (["regress", "{nan_records}", "{records}"], ["nan.csv", "not a finite number"], []),
    "regress-update-nan": (["regress", "{records}", "{nan_records}", "--update"], ["nan.csv", "finite"], ["{records}"]),
    # train-gen
    "train-out-file": (["train-gen", "dummy", "--data", "{ds}", "--out", "{afile}"], ["afile.txt", "--out"], ["{afile}"]),
    "train-existing-run": (["train-gen", "dummy", "--data", "{ds}", "--profile", "smoke", "--out", "{run}"],
                           ["run", "--resume", "--overwrite"], ["{run}"]),
    "train-resume-other-generator": (["train-gen", "gan-binary", "--data", "{ds}", "--profile", "smoke", "--out", "{run}",
                                      "--resume", "--set", "ngf=8", "--set", "ndf=8"],
                                     ["--resume", "generator ('dummy' -> 'gan-binary')"], ["{run}"]),
    "train-resume-other-data": (["train-gen", "dummy", "--data", "{ds_other}", "--profile", "smoke", "--out", "{run}",
                                 "--resume"], ["--resume", "training data"], ["{run}"]),
    "train-resume-other-options": (["train-gen", "dummy", "--data", "{ds}", "--profile", "smoke", "--out", "{run}",
                                    "--resume", "--set", "conditioning=binary-mask"], ["--resume", "conditioning"],
                                   ["{run}"]),
    "set-nan": (["train-gen", "sharp-gan", "--data", "{ds}", "--out", "{root}/new", "--set", "beta=NaN"],
                ["--set beta=NaN", "finite"], ["{root}/new"]),
    "set-inf": (["train-gen", "sharp-gan", "--data", "{ds}", "--out", "{root}/new", "--set", "lam=-inf"],
                ["--set lam=-inf"], ["{root}/new"]),
    "set-bool-for-int": (["train-gen", "sharp-gan", "--data", "{ds}", "--out", "{root}/new", "--set", "ngf=true"],
                         ["--set ngf=true", "whole number"], ["{root}/new"]),
    "set-word-for-int": (["train-gen", "sharp-gan", "--data", "{ds}", "--out", "{root}/new", "--set", "ngf=abc"],
                         ["--set ngf=abc"], ["{root}/new"]),
    "set-fraction-for-int": (["train-gen", "sharp-gan", "--data", "{ds}", "--out", "{root}/new", "--set", "ngf=8.5"],
                             ["--set ngf=8.5", "whole number"], ["{root}/new"]),
    "set-word-for-float": (["train-gen", "sharp-gan", "--data", "{ds}", "--out", "{root}/new", "--set", "beta=high"],
                           ["--set beta=high"], ["{root}/new"]),
    "set-list-for-float": (["train-gen", "sharp-gan", "--data", "{ds}", "--out", "{root}/new", "--set", "beta=[1,2]"],
                           ["--set beta=[1,2]"], ["{root}/new"]),
    "set-unknown": (["train-gen", "sharp-gan", "--data", "{ds}", "--out", "{root}/new", "--set", "ngff=8"],
                    ["ngff", "known:"], ["{root}/new"]),
    "set-no-equals": (["train-gen", "sharp-gan", "--data", "{ds}", "--out", "{root}/new", "--set", "ngf"],
                      ["--set", "KEY=VALUE"], ["{root}/new"]),
    "train-device-tpu": (["train-gen", "dummy", "--data", "{ds}", "--out", "{root}/new", "--device", "tpu"],
                         ["--device", "tpu"], ["{root}/new"]),
    "train-steps-zero": (["train-gen", "dummy", "--data", "{ds}", "--out", "{root}/new", "--steps", "0"], ["--steps"],
                         ["{root}/new"]),
    # synthesize
    "synth-out-file": (["synthesize", "dummy", "--checkpoint", "{checkpoint}", "--count", "2", "--out", "{afile}"],
                       ["afile.txt"], ["{afile}"]),
    "synth-existing-set": (["synthesize", "dummy", "--checkpoint", "{checkpoint}", "--count", "8", "--profile", "smoke",
                            "--out", "{synth_set}"], ["S3k", "--resume"], ["{synth_set}"]),
    "synth-device-tpu": (["synthesize", "dummy", "--checkpoint", "{checkpoint}", "--count", "2", "--out", "{root}/new",
                          "--device", "tpu"], ["--device", "tpu"], ["{root}/new"]),
    "synth-bad-size": (["synthesize", "sharp-gan", "--checkpoint", "{sharp_checkpoint}", "--count", "2", "--profile",
                        "smoke", "--size", "50", "--out", "{root}/new"], ["--size 50", "sharp-gan"], ["{root}/new"]),
    "synth-count-negative": (["synthesize", "dummy", "--checkpoint", "{checkpoint}", "--count", "-3", "--out",
                              "{root}/new"], ["--count"], ["{root}/new"]),
    "synth-missing-checkpoint": (["synthesize", "dummy", "--checkpoint", "{root}/nope.pt", "--count", "2", "--out",
                                  "{root}/new"], ["nope.pt"], ["{root}/new"]),
    # segment: every input is checked before any training
    "segment-bad-test-label": (["segment", "--data", "{bad_test_label}", "--profile", "smoke", "--out", "{root}/new",
                                "--no-progress"], ["e.png", "shape"], ["{root}/new"]),
    "segment-bad-synthetic": (["segment", "--data", "{ds}", "--train", "R,S3k", "--synthetic", "{root}/synth_bad",
                               "--profile", "smoke", "--out", "{root}/new", "--no-progress"],
                              ["synth_bad", "cannot read"], ["{root}/new"]),
    "segment-out-file": (["segment", "--data", "{ds}", "--profile", "smoke", "--out", "{afile}"], ["afile.txt"],
                         ["{afile}"]),
    "segment-device-tpu": (["segment", "--data", "{ds}", "--profile", "smoke", "--out", "{root}/new", "--device",
                            "tpu"], ["--device", "tpu"], ["{root}/new"]),
    "segment-threshold-nan": (["segment", "--data", "{ds}", "--profile", "smoke", "--out", "{root}/new", "--threshold",
                               "nan"], ["--threshold"], ["{root}/new"]),
    # MI-GAN commands
    "train-mi-gan-out-file": (["train-mi-gan", "--data", "synthetic-cells:siha", "--profile", "smoke", "--out", "{afile}"],
                             ["afile.txt"], ["{afile}"]),
    "train-mi-gan-device-tpu": (["train-mi-gan", "--data", "synthetic-cells:siha", "--profile", "smoke", "--out",
                                "{root}/new", "--device", "tpu"],
                               ["--device"], ["{root}/new"]),
    "sample-mi-gan-missing-run": (["sample-mi-gan", "{root}/norun", "--out", "{root}/new"], ["norun"], ["{root}/new"]),
    "qmf-limit-negative": (["quality-multifocus", "--real", "synthetic-cells:siha", "--fake", "synthetic-cells:siha",
                            "--limit", "-1", "--out", "{root}/new"], ["--limit", "-1"], ["{root}/new"]),
    "qmf-out-file": (["quality-multifocus", "--real", "synthetic-cells:siha", "--fake", "synthetic-cells:siha",
                      "--out", "{afile}"], ["afile.txt"], ["{afile}"]),
    # reproduce
    "reproduce-out-file": (["reproduce", "--data", "{ds}", "--profile", "smoke", "--out", "{afile}"], ["afile.txt"],
                           ["{afile}"]),
    "reproduce-unknown-paper": (["reproduce", "mi-gan", "--out", "{root}/new"], ["mi-gan"], ["{root}/new"]),
    "reproduce-unknown-generator": (["reproduce", "--generator", "sharp-gan,nope", "--profile", "smoke", "--out",
                                     "{root}/new"], ["nope"], ["{root}/new"]),
    "reproduce-bad-train-set": (["reproduce", "--train", "R+X", "--profile", "smoke", "--out", "{root}/new"],
                                ["unknown training set 'X' in 'R+X'", "--synthetic X=DIR"], ["{root}/new"]),
    "reproduce-seeds": (["reproduce", "--seeds", "a,b", "--profile", "smoke", "--out", "{root}/new"], ["--seeds"],
                        ["{root}/new"]),
}


def _fill(text: str, c: Corpus) -> str:
    return text.format(**{k: str(v) for k, v in vars(c).items()})


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case: str, corpus: Corpus, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                   one_thread: None) -> None:
    args, fragments, guarded = CASES[case]
    args = [_fill(a, corpus) for a in args]
    paths = [Path(_fill(g, corpus)) for g in guarded]
    before = [snapshot(p) for p in paths]
    code, out, err = run(monkeypatch, capsys, *args)
    assert code == 2, (case, code, out, err)
    assert "Traceback" not in out + err
    for frag in fragments:
        assert frag in err, (case, frag, err)
    if err.startswith("error:"):  # gbench's own errors are one line
        assert len(err.strip().splitlines()) == 1, err
    assert [snapshot(p) for p in paths] == before, f"{case}: the output changed"


# ------------------------------------------------------------------ defects, one test each


def test_overwrite_rule_keeps_a_run_and_overwrite_replaces_it(tmp_path: Path, corpus: Corpus, one_thread: None,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    base = ["train-gen", "dummy", "--data", str(corpus.ds), "--profile", "smoke", "--out", str(out)]
    assert run(monkeypatch, capsys, *base, "--steps", "4")[0] == 0
    last = (out / "checkpoints" / "last.pt").read_bytes()
    samples = sorted(p.name for p in (out / "samples").iterdir())
    # without --resume or --overwrite: refused, the run untouched (it used to restart at step 0)
    code, _, err = run(monkeypatch, capsys, *base, "--steps", "2")
    assert code == 2 and "--overwrite" in err
    assert (out / "checkpoints" / "last.pt").read_bytes() == last
    # --overwrite starts again in an emptied folder: no old sample grid stays beside the new ones
    code, text, err = run(monkeypatch, capsys, *base, "--steps", "2", "--overwrite")
    assert code == 0, err
    assert "2 steps (0 resumed)" in text
    new_samples = sorted(p.name for p in (out / "samples").iterdir())
    assert new_samples != samples and all(int(n[5:11]) <= 2 for n in new_samples)
    # --resume continues (extends to 3 steps)
    code, text, err = run(monkeypatch, capsys, *base, "--steps", "3", "--resume")
    assert code == 0 and "3 steps (2 resumed)" in text, err
    # --resume and --overwrite together: refused
    assert run(monkeypatch, capsys, *base, "--resume", "--overwrite")[0] == 2
    # --overwrite refuses a folder that does not look like gbench output
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "thesis.tex").write_text("precious")
    code, _, err = run(monkeypatch, capsys, "train-gen", "dummy", "--data", str(corpus.ds), "--profile", "smoke",
                       "--out", str(stranger), "--overwrite")
    assert code == 2 and "no record of writing this folder" in err
    assert (stranger / "thesis.tex").read_text() == "precious"


def test_synthesize_after_a_bad_option_then_resume(tmp_path: Path, corpus: Corpus, one_thread: None,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "S"
    base = ["synthesize", "sharp-gan", "--checkpoint", str(corpus.sharp_checkpoint), "--count", "2", "--profile",
            "smoke", "--out", str(out)]
    assert run(monkeypatch, capsys, *base, "--size", "50")[0] == 2
    assert not out.exists()  # no run.json written by the failed command (it used to block the corrected one)
    code, _, err = run(monkeypatch, capsys, *base)
    assert code == 0, err
    assert len(list((out / "images").glob("*.png"))) == 2
    assert run(monkeypatch, capsys, *base[:5], "3", *base[6:], "--resume")[0] == 0  # extend with --resume
    assert len(list((out / "images").glob("*.png"))) == 3


def test_second_synthesize_into_a_busy_folder_is_refused(tmp_path: Path, corpus: Corpus, one_thread: None,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from gbench.core.fileio import FolderBusy, folder_lock
    from gbench.pipelines.synthesis import synthesize

    out = tmp_path / "S"
    with folder_lock(out):  # another synthesize is writing this folder
        with pytest.raises(FolderBusy, match="another gbench run is writing this folder"):
            synthesize("dummy", corpus.checkpoint, 2, out, seed=0, profile="smoke", progress=False)
        assert not (out / "run.json").exists() and not (out / "images").exists()
        code, _, err = run(monkeypatch, capsys, "synthesize", "dummy", "--checkpoint", str(corpus.checkpoint),
                           "--count", "2", "--profile", "smoke", "--out", str(out), "--resume")
        assert code == 2 and "another gbench run" in err and str(out) in err
    res = synthesize("dummy", corpus.checkpoint, 2, out, seed=0, profile="smoke", progress=False)
    assert res.generated == 2  # the lock died with its holder


def test_identical_trainings_give_identical_checkpoint_bytes(tmp_path: Path, corpus: Corpus, one_thread: None) -> None:
    from gbench.pipelines.synthesis import synthesize
    from gbench.generators.train import train_generator

    ck = [train_generator("dummy", str(corpus.ds), tmp_path / f"r{i}", profile="smoke", seed=3, steps=2,
                          progress=False).checkpoint for i in range(2)]
    assert ck[0].read_bytes() == ck[1].read_bytes()  # torch.save used to embed the temp file's name
    sets = [synthesize("dummy", c, 2, tmp_path / f"s{i}", seed=0, profile="smoke", progress=False) for i, c in enumerate(ck)]
    rows = [sets[i].manifest.read_text().splitlines()[1].split(",") for i in range(2)]
    assert rows[0][4] == rows[1][4] and len(rows[0][4]) == 64  # checkpoint_sha256 is stable


def test_orphan_temp_files_are_cleaned_by_the_next_run(tmp_path: Path, corpus: Corpus, one_thread: None) -> None:
    import subprocess

    from gbench.core.fileio import clean_orphan_temps
    from gbench.pipelines.synthesis import synthesize
    from gbench.generators.train import train_generator

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited
    run_dir = tmp_path / "run"
    train_generator("dummy", str(corpus.ds), run_dir, profile="smoke", seed=0, steps=2, progress=False)
    orphan = run_dir / "checkpoints" / f".last.pt.{pid}.abcd1234.tmp.pt"
    orphan.write_bytes(b"half a checkpoint")
    live = run_dir / f".run.json.{1}.abcd1234.tmp.json"  # pid 1 is alive: another run's temp file stays
    live.write_text("{")
    train_generator("dummy", str(corpus.ds), run_dir, profile="smoke", seed=0, steps=3, resume=True, progress=False)
    assert not orphan.exists() and live.exists()
    live.unlink()
    out = tmp_path / "S"
    synthesize("dummy", corpus.checkpoint, 2, out, seed=0, profile="smoke", progress=False)
    orphan = out / "images" / f".dummy-s0-000005.png.{pid}.zz_y0123.tmp.png"
    orphan.write_bytes(b"half a png")
    synthesize("dummy", corpus.checkpoint, 3, out, seed=0, profile="smoke", progress=False)
    assert not orphan.exists()
    assert clean_orphan_temps(tmp_path / "missing") == []


def test_outputs_respect_the_umask(tmp_path: Path) -> None:
    import os

    from gbench.core.fileio import write_json, write_text
    from gbench.data.io import write_png

    old = os.umask(0o022)
    try:
        assert write_json(tmp_path / "a.json", {"x": 1}).stat().st_mode & 0o777 == 0o644  # was 0600 (mkstemp)
        os.umask(0o027)
        assert write_text(tmp_path / "b.txt", "x").stat().st_mode & 0o777 == 0o640
        write_png(tmp_path / "c.png", np.zeros((4, 4), np.uint8))
        assert (tmp_path / "c.png").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_json_never_holds_nan(tmp_path: Path) -> None:
    from gbench.core.fileio import write_json

    path = write_json(tmp_path / "a.json", {"a": math.nan, "b": [1.0, math.inf], "c": np.float32("nan"), "d": 2})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": None, "d": 2}


def test_png16_rgb_is_read_at_full_depth(tmp_path: Path) -> None:
    from gbench.core.errors import DataError
    from gbench.data.io import read_image

    low = np.random.default_rng(0).integers(0, 256, (6, 5, 3)).astype(np.uint16)
    write_png16(tmp_path / "low.png", low)
    np.testing.assert_array_equal(read_image(tmp_path / "low.png"), low.astype(np.uint8))  # was all black
    write_png16(tmp_path / "rgba.png", np.dstack([low, np.full((6, 5), 65535, np.uint16)]))
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), low.astype(np.uint8))
    write_png16(tmp_path / "high.png", low * 257)
    with pytest.raises(DataError, match=r"high.png: expected 8-bit RGB, got a uint16 image with values up to"):
        read_image(tmp_path / "high.png")


def test_monuseg_ids_and_dropped_polygons(tmp_path: Path) -> None:
    import tifffile

    from gbench.data import load_dataset
    from gbench.data.loaders import rasterize_polygons, read_monuseg_xml

    tifffile.imwrite(tmp_path / "t.tif", np.full((30, 30, 3), 200, np.uint8))
    a = [(1, 1), (8, 1), (8, 8), (1, 8)]
    line = [(10, 10), (20, 20)]  # 2 vertices: dropped, counted, and its id (2) is not reused
    c = [(12, 12), (20, 12), (20, 20), (12, 20)]
    edge = [(25, 25), (30.2, 25), (30.2, 30.2), (25, 30.2)]  # overshoots the border by a fraction of a pixel
    (tmp_path / "t.xml").write_text(XML_TEMPLATE.format(
        regions=_region(1, a) + _region(2, line) + _region(3, c) + _region(4, edge)))
    s = load_dataset(f"monuseg:{tmp_path}", split="all")[0]
    assert s.meta["dropped_polygons"] == 1
    assert set(np.unique(s.instances)) == {0, 1, 3, 4}  # polygon k keeps id k+1
    assert (s.instances == 4).sum() == 25  # clipped to the tile, not stretched
    polys = read_monuseg_xml(tmp_path / "t.xml")
    assert [len(p) for p in polys] == [4, 2, 4, 4]
    inst, dropped = rasterize_polygons(polys, (30, 30))
    assert dropped == 1 and np.array_equal(inst, s.instances)


def test_segment_validates_the_test_split_before_training(corpus: Corpus, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The bad test label is found before a single training step (it used to cost a whole training)."""
    import gbench.pipelines.segmentation_grid as bench
    from gbench.cli.commands.segment import validate_inputs
    from gbench.core.errors import DataError
    from gbench.core.profiles import get_profile

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started before the inputs were checked")

    monkeypatch.setattr(bench, "run_cell", no_training)
    with pytest.raises(DataError, match="e.png"):
        validate_inputs(["unet"], ["R"], str(corpus.bad_test_label), get_profile("smoke"), None)
    n = validate_inputs(["unet"], ["R", "R+S3k"], str(corpus.ds), get_profile("smoke"), corpus.root / "synth")
    assert n == 3 + 2 + 6  # train, test and the synthetic images, each read once


# ------------------------------------------------------------------------- property-based

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(text=st.text(max_size=12))
def test_set_parser_int_field(text: str) -> None:
    from gbench.core.options import OptionError, parse_set_options
    from gbench.generators.pix2pix import Pix2PixConfig

    try:
        value = parse_set_options([f"ngf={text}"], Pix2PixConfig)["ngf"]
    except OptionError as exc:
        assert str(exc).startswith("--set") and "\n" not in str(exc)
        return
    assert type(value) is int and value == int(text.strip())


@PROPERTY
@given(text=st.one_of(st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                      st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e400", "true", "[1, 2]", "0x10", " 0.5 "])))
def test_set_parser_float_field(text: str) -> None:
    from gbench.core.options import OptionError, parse_set_options
    from gbench.generators.pix2pix import Pix2PixConfig

    try:
        value = parse_set_options([f"beta={text}"], Pix2PixConfig)["beta"]
    except OptionError as exc:
        assert "beta" in str(exc) and "\n" not in str(exc)
        return
    assert isinstance(value, float) and math.isfinite(value) and value == float(text)


@PROPERTY
@given(x=st.floats(allow_nan=False, allow_infinity=False), n=st.integers(-10**12, 10**12))
def test_set_parser_round_trips_numbers(x: float, n: int) -> None:
    from gbench.core.options import OptionError, parse_set_options
    from gbench.generators.pix2pix import Pix2PixConfig

    items = [f"lr={x!r}", f"ngf={n}", "adam_betas=[0.5, 0.9]", "norm=instance"]
    if not (0 <= x <= 1 and 1 <= n <= 1024):  # outside the documented ranges (gbench.core.options.SET_RANGES)
        with pytest.raises(OptionError, match="out of range"):
            parse_set_options(items, Pix2PixConfig)
        return
    got = parse_set_options(items, Pix2PixConfig)
    assert got == {"lr": x, "ngf": n, "adam_betas": (0.5, 0.9), "norm": "instance"}


@PROPERTY
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".png", ".tif", ".npy", ".jpg"]))
def test_image_and_label_readers_fail_with_one_line(tmp_path_factory: pytest.TempPathFactory, data: bytes,
                                                    suffix: str) -> None:
    from gbench.core.errors import DataError
    from gbench.data.io import read_image, read_label

    path = tmp_path_factory.mktemp("bytes") / f"x{suffix}"
    path.write_bytes(data)
    for reader in (read_image, read_label):
        try:
            reader(path)
        except DataError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc)


@PROPERTY
@given(arr=st.integers(1, 6).flatmap(lambda h: st.integers(1, 6).flatmap(lambda w: st.sampled_from([1, 3, 4]).flatmap(
    lambda c: st.sampled_from([np.uint8, np.uint16]).flatmap(lambda dt: st.lists(
        st.integers(0, int(np.iinfo(dt).max)), min_size=h * w * c, max_size=h * w * c).map(
        lambda v: np.asarray(v, dtype=dt).reshape(h, w, c)))))))
def test_read_image_values(tmp_path_factory: pytest.TempPathFactory, arr: np.ndarray) -> None:
    """Any 8/16-bit gray/RGB/RGBA PNG: exactly its values (as uint8, RGB) or a one-line refusal
    (values beyond 8 bits, or an alpha channel with real transparency)."""
    from gbench.core.errors import DataError
    from gbench.data.io import read_image

    path = tmp_path_factory.mktemp("png") / "x.png"
    if arr.dtype == np.uint16 and arr.shape[2] in (3, 4):
        write_png16(path, arr)
    elif arr.shape[2] == 1:
        Image.fromarray(arr[:, :, 0]).save(path)
    else:
        Image.fromarray(arr).save(path)
    rgb = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[:, :, :3]
    try:
        got = read_image(path)
    except DataError as exc:
        transparent = arr.shape[2] == 4 and bool((arr[:, :, 3] < np.iinfo(arr.dtype).max).any())
        assert (arr.max() > 255 and "8-bit" in str(exc)) or (transparent and "transparency" in str(exc))
        return
    assert arr.max() <= 255 and got.dtype == np.uint8
    np.testing.assert_array_equal(got, rgb.astype(np.uint8))


_coord = st.one_of(st.floats(-50, 80), st.sampled_from([math.nan, math.inf, -math.inf, 1e9]))


@PROPERTY
@given(polys=st.lists(st.lists(st.tuples(_coord, _coord), min_size=0, max_size=6), min_size=1, max_size=6))
def test_monuseg_polygons(tmp_path_factory: pytest.TempPathFactory, polys: list[list[tuple[float, float]]]) -> None:
    """Random regions: either a one-line refusal (non-finite or far-outside vertex), or polygon k has
    id k+1 or is counted as dropped."""
    from gbench.core.errors import DataError
    from gbench.data.loaders import OUT_OF_BOUNDS_MARGIN, rasterize_polygons, read_monuseg_xml

    shape = (30, 40)
    path = tmp_path_factory.mktemp("xml") / "t.xml"
    path.write_text(XML_TEMPLATE.format(regions="".join(_region(k + 1, p) for k, p in enumerate(polys))))
    pts = [c for p in polys for c in p]
    bad = any(not (math.isfinite(x) and math.isfinite(y)) for x, y in pts) or any(
        not (-OUT_OF_BOUNDS_MARGIN <= x <= shape[1] + OUT_OF_BOUNDS_MARGIN
             and -OUT_OF_BOUNDS_MARGIN <= y <= shape[0] + OUT_OF_BOUNDS_MARGIN) for x, y in pts)
    try:
        read = read_monuseg_xml(path, shape)
    except DataError as exc:
        assert bad and str(exc).startswith(str(path)) and "\n" not in str(exc)
        return
    assert not bad and len(read) == len(polys)
    inst, dropped = rasterize_polygons(read, shape)
    ids = set(np.unique(inst)) - {0}
    assert ids <= {k + 1 for k, p in enumerate(polys) if len(p) >= 3}
    assert dropped == len(polys) - len(ids)


@PROPERTY
@given(data=st.binary(max_size=200))
def test_split_csv_any_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    from gbench.core.errors import DataError
    from gbench.data import load_dataset

    root = tmp_path_factory.mktemp("split")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "images" / "a.png")
    Image.fromarray(random_disks((4, 4), 1, rmin=1, rmax=1).astype(np.uint16)).save(root / "labels" / "a.png")
    (root / "split.csv").write_bytes(data)
    try:
        ds = load_dataset(root, split="train")
    except DataError as exc:
        assert "\n" not in str(exc) and str(root) in str(exc)
        return
    assert ds.names == ["a"]
