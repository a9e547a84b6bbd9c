"""``gbench demo mi-gan`` (smoke profile), the evaluation against the targets and floors, and the
transfer verdict with seeds as the units."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gbench.data.multifocus import stack_array
from gbench.data.resolve import load_stacks
from gbench.pipelines.migan_demo import (
    TRANSFER_METRICS,
    _seed_observations,
    evaluate_stacks,
    mean_stack,
    shuffled_planes,
    transfer_verdict,
)
from tests.cli.test_cli import run_cli

# one torch thread per test, as under tests/generators/conftest.py (where these tests lived before)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sets() -> tuple[np.ndarray, np.ndarray]:
    train = stack_array(load_stacks("synthetic-cells:siha", "train", n=48, size=32))
    test = stack_array(load_stacks("synthetic-cells:siha", "test", n=48, size=32))
    return train, test


def test_floors_and_targets_on_real_stacks(sets: tuple[np.ndarray, np.ndarray]) -> None:
    train, test = sets
    ev = evaluate_stacks(train[::-1].copy(), test, train, name="real")  # real stacks as the "samples"
    assert ev.failure == "" and ev.passed, ev.checks  # real stacks meet every target
    v = ev.values
    assert v["real"] == pytest.approx(v["real (train)"])  # the reference: real training stacks (order aside)
    assert v["shuffled planes"]["fid"] > 4 * v["real"]["fid"] and v["mean stack"]["fid"] > 4 * v["real"]["fid"]
    assert v["shuffled planes"]["kid"] > v["mean stack"]["kid"] > v["real"]["kid"]
    assert v["mean stack"]["diversity"] == 0 and v["shuffled planes"]["focus_curve_l1"] > 0.2
    assert ev.to_dict()["status"] == "ok"
    # the floors themselves fail the targets (and the failed-run check)
    mean = evaluate_stacks(mean_stack(train, len(test)), test, train, name="mean")
    assert not mean.passed and mean.failure.startswith("collapsed samples")
    shuffled = evaluate_stacks(shuffled_planes(test, 1), test, train, name="shuffled")
    assert not shuffled.checks["fid"][0] and shuffled.failure.startswith("no focus peak")


def _rows(fid_t: list[float], fid_s: list[float], worse_kid: bool = False, failed: bool = False) -> list[dict]:
    rows = []
    for side, fids in (("transfer", fid_t), ("scratch", fid_s)):
        for seed, f in enumerate(fids):
            kid = f / 10 + (0.5 if worse_kid and side == "transfer" else 0.0)
            bad = failed and side == "scratch" and seed == 2
            rows.append({"side": side, "seed": seed, "fid": f, "kid": kid, "focus_curve_l1": f / 100,
                         "status": "failed" if bad else "ok", "failure": "collapsed samples: test" if bad else ""})
    return rows


def _verdict(rows: list[dict]) -> tuple:
    obs_t = _seed_observations(rows, "transfer", "smoke", "h")
    obs_s = _seed_observations(rows, "scratch", "smoke", "h")
    return transfer_verdict(obs_t, obs_s, n_resamples=500)


def test_transfer_verdict_seeds_as_units() -> None:
    rng = np.random.default_rng(0)
    scratch = list(10 + rng.normal(0, 1, 7))
    better = [s - 3 + rng.normal(0, 0.3) for s in scratch]  # a planted gain on every seed
    est, diffs, verdicts, verdict, method = _verdict(_rows(better, scratch))
    assert verdict == "supported" and set(verdicts.values()) == {"better"}
    assert "units = training seeds (7 pairs" in method and "smallest possible two-sided p = 0.0156" in method
    d = {x.metric: x for x in diffs}["fid"]
    assert d.diff == pytest.approx(np.mean(better) - np.mean(scratch)) and d.ci_high < 0
    assert est["transfer"]["fid"].ci_low < np.mean(better) < est["transfer"]["fid"].ci_high
    _, _, _, same, _ = _verdict(_rows(scratch, scratch))
    assert same == "not significant"
    _, _, v, worse, _ = _verdict(_rows(better, scratch, worse_kid=True))
    assert worse == "contradicted" and v["kid"] == "worse"
    _, _, _, failed, _ = _verdict(_rows(better, scratch, failed=True))
    assert failed.startswith("untested: failed run")
    _, _, _, few, m3 = _verdict(_rows(better[:3], scratch[:3]))  # 3 seeds: p >= 0.25, never supported
    assert few == "not significant" and "0.25" in m3


def test_demo_mi_gan_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert run_cli(monkeypatch, "demo", "mi-gan", "--profile", "smoke", "--out", str(out), "--no-progress",
                   "--transfer", "--transfer-seeds", "0,1", "--set", "upsample=bilinear", "--set", "g1_width=4") == 0
    text = capsys.readouterr().out
    assert "MI-GAN1" in text and "targets" in text  # (rich wraps the tables at 80 columns)
    assert "transfer" in text and "scratch" in text
    ev = json.loads((out / "evaluation.json").read_text())
    assert set(ev["values"]) == {"mi-gan", "real (train)", "shuffled planes", "mean stack"}
    assert ev["status"] in ("ok", "failed") and set(ev["checks"]) == {"focus_peak", "interplane_ssim", "diversity",
                                                                      "fid", "kid"}
    assert ev["steps_per_phase"] == {"g1": 4, "g2": 4} and ev["profile"] == "smoke"
    for name in ("sample_sheet.png", "real_sheet.png", "focus_curve.png", "summary.md", "mi-gan1/mi-gan.pt"):
        assert (out / name).is_file(), name
    tr = json.loads((out / "transfer" / "transfer.json").read_text())
    assert tr["seeds"] == [0, 1] and len(tr["per_seed"]) == 4
    assert tr["steps_per_phase"] == {"g1": 3, "g2": 2}  # the same budget for transfer and scratch
    runs = [json.loads((out / "transfer" / f"{side}-s{s}" / "run.json").read_text()) for side in ("transfer", "scratch")
            for s in (0, 1)]
    assert all(r["steps_per_phase"] == {"g1": 3, "g2": 2} for r in runs)
    assert [r["transfer"] is not None for r in runs] == [True, True, False, False]
    assert len({json.dumps({k: v for k, v in r["config"].items() if k != "lr"}, sort_keys=True) for r in runs}) == 1
    # --set reached MI-GAN1 and both sides of the transfer (an option and a field of the profile's section)
    mi_gan1 = json.loads((out / "mi-gan1" / "run.json").read_text())
    for r in [mi_gan1, *runs]:
        assert r["config"]["upsample"] == "bilinear" and r["config"]["g1_width"] == 4
    assert tr["verdict"].startswith(("untested", "not significant", "supported", "contradicted"))
    assert {d["metric"] for d in tr["differences"]} <= set(TRANSFER_METRICS)
    # a second run refuses the folder; --resume reuses the finished runs
    assert run_cli(monkeypatch, "demo", "mi-gan", "--profile", "smoke", "--out", str(out)) == 2
    assert "--resume" in capsys.readouterr().err


def test_demo_options(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_cli(monkeypatch, "demo", "mi-gan", "--transfer-seeds", "0,x", "--out", str(tmp_path / "a")) == 2
    assert "--transfer-seeds must be whole numbers" in capsys.readouterr().err
    assert run_cli(monkeypatch, "demo", "mi-gan", "--transfer-seeds", "0,1", "--out", str(tmp_path / "b")) == 2
    assert "--transfer-seeds needs --transfer" in capsys.readouterr().err
    assert run_cli(monkeypatch, "demo", "mi-gan", "--set", "upsampel=bilinear", "--out", str(tmp_path / "c")) == 2
    assert "unknown MI-GAN option" in capsys.readouterr().err
    assert run_cli(monkeypatch, "demo", "mi-gan", "--set", "upsample=cubic", "--out", str(tmp_path / "d")) == 2
    assert "upsample" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()
    calls = []
    import gbench.pipelines.runner

    monkeypatch.setattr(gbench.pipelines.runner, "demo", lambda out, **kw: calls.append((out, kw)))
    assert run_cli(monkeypatch, "demo", "--out", str(tmp_path / "main"), "--profile", "smoke") == 0  # unchanged
    assert calls and calls[0][0] == tmp_path / "main" and calls[0][1]["profile"] == "smoke"
