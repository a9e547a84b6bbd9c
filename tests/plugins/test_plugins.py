"""Plugins (issue 23): the example package through --plugin, entry-point discovery through a fake
distribution, frozen generators in quality / synthesize / reproduce, and the bad inputs (one
line, exit 2, nothing written)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner, Result

from gbench.cli.app import app

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "gbench-plugin-example" / "src" / "gbench_plugin_example"
PLUGIN = str(EXAMPLE / "plugin.py")
GBENCH = Path(sys.executable).with_name("gbench")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def run(*args: str) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def one_line_error(res: Result) -> str:
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert "Traceback" not in res.output
    return lines[0]


def test_import_gbench_and_api_stay_light() -> None:
    code = ("import sys, gbench, gbench.api; assert callable(gbench.register_generator); "
            "bad = [m for m in ('torch', 'gbench.generators', 'importlib.metadata') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True).stdout
    assert out.strip() == "[]"
    # the CLI app is built (what --help needs) without discovering plugins or importing torch
    code = ("import sys; from gbench.cli.app import app; "
            "print([m for m in ('torch', 'gbench.generators', 'gbench_plugin_example') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True).stdout
    assert out.strip() == "[]"


def test_example_plugin_quality_synthesize_extractor(tmp_path: Path) -> None:
    res = run("--plugin", PLUGIN, "list", "generators")
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("tiny-painter"))
    assert PLUGIN in line and "frozen" in line
    assert any(ln.startswith("gan-dist") and "built-in" in ln for ln in res.output.splitlines())
    for kind, name in (("segmenters", "tiny-seg"), ("extractors", "colour-stats")):
        res = run("--plugin", PLUGIN, "list", kind)
        assert any(ln.startswith(name) and PLUGIN in ln for ln in res.output.splitlines()), res.output

    # quality --generator with its default weights, then with the weights file named: same numbers
    q1, q2 = tmp_path / "q1", tmp_path / "q2"
    res = run("--plugin", PLUGIN, "quality", "--generator", "tiny-painter", "--data", "synthetic-he", "--profile",
              "smoke", "--out", q1)
    assert res.exit_code == 0, res.output
    weights = EXAMPLE / "weights" / "tiny_painter.npz"
    res = run("--plugin", PLUGIN, "quality", "--generator", "tiny-painter", "--checkpoint", weights, "--data",
              "synthetic-he", "--profile", "smoke", "--out", q2)
    assert res.exit_code == 0, res.output
    a, b = pd.read_csv(q1 / "per_crop.csv"), pd.read_csv(q2 / "per_crop.csv")
    assert (a["generator"] == "tiny-painter").all() and (a["conditioning"] == "distance-map").all()
    assert a["checkpoint_sha256"].isna().all() and len(b["checkpoint_sha256"].iloc[0]) == 64
    np.testing.assert_allclose(a[["ssim", "fsim", "gmsd", "nrmse"]], b[["ssim", "fsim", "gmsd", "nrmse"]], atol=1e-12)

    # synthesize: each image is the plugin's output on its label map's distance map, as a PNG holds it
    out = tmp_path / "s"
    res = run("--plugin", PLUGIN, "synthesize", "tiny-painter", "--out", out, "--count", "6", "--profile", "smoke")
    assert res.exit_code == 0, res.output
    res = run("--plugin", PLUGIN, "synthesize", "tiny-painter", "--out", tmp_path / "s1", "--count", "6", "--seed",
              "1", "--profile", "smoke")
    assert res.exit_code == 0, res.output
    # quality --extractor with the plugin's extractor (two sets of the plugin's images, unpaired)
    res = run("--plugin", PLUGIN, "quality", "--real", tmp_path / "s1" / "images", "--fake", out / "images",
              "--unpaired", "--extractor", "colour-stats", "--out", tmp_path / "qe", "--profile", "smoke")
    assert res.exit_code == 0, res.output
    assert "colour-stats" in (tmp_path / "qe").joinpath("records.csv").read_text() or any(
        "colour-stats" in f.read_text() for f in (tmp_path / "qe").glob("*.csv"))
    from gbench.data.conditioning import distance_map
    from gbench_plugin_example.generator import TinyPainter

    man = pd.read_csv(out / "manifest.csv")
    assert len(man) == 6 and (man["generator"] == "tiny-painter").all()
    sid = man["sample_id"].iloc[1]
    inst = np.asarray(Image.open(out / "labels" / f"{sid}.png")).astype(np.int32)
    with torch.no_grad():
        ref = TinyPainter().generate(torch.from_numpy(distance_map(inst)[None, None]))
    ref8 = (ref.clamp(0, 1) * 255 + 0.5).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    got = np.asarray(Image.open(out / "images" / f"{sid}.png").convert("RGB"))
    assert np.abs(got.astype(int) - ref8.astype(int)).max() <= 1  # batched vs single convolution rounding

    res = run("--plugin", PLUGIN, "train-gen", "tiny-painter", "--data", "synthetic-he", "--out", tmp_path / "t")
    assert "frozen" in one_line_error(res) and not (tmp_path / "t").exists()


@pytest.mark.slow
def test_example_plugin_segment_and_reproduce(tmp_path: Path) -> None:
    res = run("--plugin", PLUGIN, "segment", "--arch", "tiny-seg", "--train", "R", "--data", "synthetic-he",
              "--profile", "smoke", "--out", tmp_path / "seg", "--max-steps", "2", "--no-progress")
    assert res.exit_code == 0, res.output
    assert (pd.read_csv(tmp_path / "seg" / "results.csv")["arch"] == "tiny-seg").all()
    # reproduce: a Table 1 row for the plugin beside a built-in generator (mask-paint, the floor)
    res = run("--plugin", PLUGIN, "reproduce", "sharp-gan", "--generator", "mask-paint,tiny-painter", "--arch",
              "tiny-seg", "--train", "R", "--data", "synthetic-he", "--profile", "smoke", "--seeds", "0",
              "--out", tmp_path / "r")
    assert res.exit_code == 0, res.output
    recs = pd.read_csv(tmp_path / "r" / "records.csv")
    q = recs[recs["metric"] == "ssim"]
    assert set(q["model"]) == {"mask-paint", "tiny-painter"} and q["value"].notna().all()
    assert not list((tmp_path / "r" / "stages").glob("train-tiny-painter*"))  # never trained


def _bad_generator_plugin(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / f"{name.replace('-', '_')}.py"
    path.write_text(textwrap.dedent(f"""
        import torch
        from gbench.api import FrozenGenerator, register_generator

        class Bad(FrozenGenerator):
            conditioning = "binary"

            def __init__(self, checkpoint=None):
                pass

            def generate(self, maps):
                n, _, h, w = maps.shape
                {body}

        register_generator({name!r}, Bad)
    """))
    return str(path)


@pytest.mark.parametrize(("name", "body", "what"), [
    ("bad-shape", "return torch.rand(n, 3, h // 2, w)", "shape"),
    ("bad-channels", "return torch.rand(n, 1, h, w)", "1 channels"),
    ("bad-range", "return torch.rand(n, 3, h, w) * 255", "outside [0, 1]"),
    ("bad-dtype", "return (torch.rand(n, 3, h, w) * 255).to(torch.uint8)", "dtype uint8"),
    ("bad-nan", "return torch.full((n, 3, h, w), float('nan'))", "NaN"),
    ("bad-numpy", "return torch.rand(n, 3, h, w).numpy()", "numpy.ndarray"),
])
def test_bad_generator_output_is_one_line_and_writes_nothing(tmp_path: Path, name: str, body: str, what: str) -> None:
    plugin = _bad_generator_plugin(tmp_path, name, body)
    out = tmp_path / "q"
    msg = one_line_error(run("--plugin", plugin, "quality", "--generator", name, "--data", "synthetic-he",
                             "--profile", "smoke", "--out", out))
    assert f"generator {name!r}" in msg and plugin in msg and what in msg
    assert not list(out.glob("*.csv"))
    out = tmp_path / "s"
    msg = one_line_error(run("--plugin", plugin, "synthesize", name, "--out", out, "--count", "2", "--profile",
                             "smoke"))
    assert f"generator {name!r}" in msg and what in msg
    assert not list(out.rglob("*.png")) and not (out / "manifest.csv").exists()


def test_broken_plugin_and_name_clash(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import gbench_no_such_module\n")
    msg = one_line_error(run("--plugin", broken, "list", "generators"))
    assert str(broken) in msg and "ModuleNotFoundError" in msg and "gbench_no_such_module" in msg
    msg = one_line_error(run("--plugin", tmp_path / "missing.py", "list", "generators"))
    assert "missing.py" in msg

    clash = tmp_path / "clash.py"
    clash.write_text("from gbench.api import register_generator\nfrom gbench_plugin_example.generator import "
                     "TinyPainter\nregister_generator('gan-dist', TinyPainter)\n")
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        msg = one_line_error(run("--plugin", clash, "quality", "--generator", "gan-dist", "--data", "synthetic-he",
                                 "--profile", "smoke", "--out", tmp_path / "q"))
    finally:
        sys.path.remove(str(EXAMPLE.parent))
    assert "'gan-dist'" in msg and str(clash) in msg and "built-in" in msg
    assert not list((tmp_path / "q").glob("*.csv"))


def _fake_distribution(site: Path, name: str, entry_points: str) -> None:
    dist = site / f"{name.replace('-', '_')}-1.2.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text(entry_points)


def test_entry_point_discovery_through_a_fake_distribution(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "fake_gbench_plugin.py").write_text(textwrap.dedent("""
        import torch

        class Grey:
            conditioning = "instances"

            def __init__(self, checkpoint=None):
                pass

            def generate(self, maps):
                return (maps > 0).float().expand(-1, 3, -1, -1) * 0.5
    """))
    _fake_distribution(site, "fake-gbench-plugin", "[gbench.generators]\nfake-grey = fake_gbench_plugin:Grey\n")
    _fake_distribution(site, "broken-gbench-plugin", "[gbench.generators]\nbroken = no_such_module_xyz:Thing\n")
    env = {**ENV, "PYTHONPATH": str(site)}
    res = subprocess.run([str(GBENCH), "list", "generators"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("fake-grey"))
    assert "fake-gbench-plugin 1.2" in line and "frozen" in line
    assert "gan-dist" in res.stdout  # the rest works
    warn = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(warn) == 1 and "'broken'" in warn[0] and "broken-gbench-plugin 1.2" in warn[0] \
        and "ModuleNotFoundError" in warn[0]
    # --help reads no entry points (the broken one would warn)
    res = subprocess.run([str(GBENCH), "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0 and "warning" not in res.stderr
