"""Training, early stopping, resume, scoring, the smoke grid through the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from gbench.core.profiles import SMOKE
from gbench.data.resolve import resolve_dataset
from gbench.pipelines.segmentation_grid import RESULT_COLUMNS, run_cell
from gbench.segmentation import train as train_mod
from gbench.segmentation.train import SegmenterModule, config_from_profile, evaluate, split_train_val, train_segmenter
from tests.cli.test_cli import run_cli
from tests.segmentation.test_sets import write_synthetic_set

TINY = {"model": {"width": 0.125}}


def _train_parts():
    ds = resolve_dataset("synthetic-he", "train", SMOKE, 0)
    return [(ds, list(range(len(ds))))]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    ck = torch.load(path, weights_only=False)
    return {k.removeprefix("net."): v for k, v in ck["module"].items()}


def test_split_train_val_is_deterministic_disjoint_and_per_part() -> None:
    a = list(range(20))
    b = list(range(5))
    parts = [("A", a), ("B", b)]
    tr, va = split_train_val(parts, 0.2, seed=3)  # type: ignore[arg-type]
    assert (tr, va) == split_train_val(parts, 0.2, seed=3)  # type: ignore[arg-type]
    assert sum(1 for d, _ in va if d == "A") == 4 and sum(1 for d, _ in va if d == "B") == 1
    assert not set(tr) & set(va) and len(tr) + len(va) == 25
    assert split_train_val(parts, 0.2, seed=4) != (tr, va)  # type: ignore[arg-type]
    tr0, va0 = split_train_val(parts, 0.0, seed=3)  # type: ignore[arg-type]
    assert va0 == [] and len(tr0) == 25


def test_validation_does_not_change_the_trajectory(tmp_path: Path) -> None:
    """Validating every 2 steps (eval mode, inside fit's loop) leaves the training run as it is."""
    base = dict(max_steps=6, batch_size=2, patience=0, val_fraction=0.2, **TINY)
    train_segmenter(config_from_profile(SMOKE, "segnet", val_every=2, **base), _train_parts(), seed=1,
                    out_dir=tmp_path / "a", progress=False)
    train_segmenter(config_from_profile(SMOKE, "segnet", val_every=6, **base), _train_parts(), seed=1,
                    out_dir=tmp_path / "b", progress=False)
    wa, wb = (_weights(tmp_path / d / "checkpoints" / "last.pt") for d in "ab")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_early_stopping_keeps_the_best_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = iter([1.0, 0.5, 0.6, 0.7, 0.4, 0.3])
    monkeypatch.setattr(train_mod, "_validate", lambda *a, **k: {"val_loss": next(values), "val_pq": 0.0, "val_aji": 0.0})
    cfg = config_from_profile(SMOKE, "segnet", max_steps=12, val_every=2, patience=2, batch_size=2, **TINY)
    out = train_segmenter(cfg, _train_parts(), seed=0, out_dir=tmp_path / "es", progress=False)
    assert out.stopped_early and out.steps_done == 8 and out.best_step == 4
    assert [v["step"] for v in out.validations] == [2, 4, 6, 8]
    # the returned weights are those after step 4: compare with a plain 4-step run
    ref = config_from_profile(SMOKE, "segnet", max_steps=4, val_every=4, patience=0, batch_size=2, **TINY)
    monkeypatch.setattr(train_mod, "_validate", lambda *a, **k: {"val_loss": 0.0, "val_pq": 0.0, "val_aji": 0.0})
    train_segmenter(ref, _train_parts(), seed=0, out_dir=tmp_path / "ref", progress=False)
    want = _weights(tmp_path / "ref" / "checkpoints" / "last.pt")
    got = out.module.net.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_resume_after_interruption_matches_uninterrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config_from_profile(SMOKE, "segnet", max_steps=6, val_every=2, patience=0, batch_size=2,
                              checkpoint_every=2, **TINY)
    full = train_segmenter(cfg, _train_parts(), seed=2, out_dir=tmp_path / "full", progress=False)
    real_validate = train_mod._validate
    calls = {"n": 0}

    def counted(*a, **k):
        calls["n"] += 1
        return real_validate(*a, **k)

    def flaky(*a, **k):
        if calls["n"] == 1:  # the validation of step 4 (last.pt holds step 2)
            raise KeyboardInterrupt
        return counted(*a, **k)

    monkeypatch.setattr(train_mod, "_validate", flaky)
    with pytest.raises(KeyboardInterrupt):
        train_segmenter(cfg, _train_parts(), seed=2, out_dir=tmp_path / "cut", progress=False)
    assert torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=False)["step"] == 2
    calls["n"] = 0
    monkeypatch.setattr(train_mod, "_validate", counted)
    resumed = train_segmenter(cfg, _train_parts(), seed=2, out_dir=tmp_path / "cut", resume=True, progress=False)
    assert calls["n"] == 2  # steps 4 and 6: the run continued from step 2, it did not start over
    assert [v["step"] for v in resumed.validations] == [2, 4, 6]
    assert resumed.best_step == full.best_step
    assert [v["val_loss"] for v in resumed.validations] == pytest.approx([v["val_loss"] for v in full.validations], abs=0)
    a, b = full.module.net.state_dict(), resumed.module.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_profile_settings_demo_small_paper_untouched() -> None:
    """demo: the shallow U-Net (no unused encoder stage: every parameter gets a gradient, so DDP
    needs no find_unused_parameters) at its own crop and lr; paper: the paper's settings."""
    from gbench import segmentation
    from gbench.core.profiles import DEMO, PAPER

    cfg = config_from_profile(DEMO, "unet")
    assert (cfg.image_size, cfg.lr, cfg.batch_size, cfg.max_steps) == (96, 1e-3, 8, 100)
    net = segmentation.create("unet", **cfg.model_options, classes=1)
    net(torch.randn(2, 3, 64, 64)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    assert sum(p.numel() for p in net.parameters()) < 4_000_000
    assert config_from_profile(DEMO, "segnet", max_steps=7).max_steps == 7  # explicit options still win
    paper = config_from_profile(PAPER, "unet")
    assert (paper.image_size, paper.lr, paper.batch_size, paper.epochs, paper.max_steps) == (256, 1e-4, 16, 500, None)
    assert paper.model_options == {"encoder": "resnet34"}


def test_finished_cell_keeps_small_files_only(tmp_path: Path) -> None:
    """A finished cell: last.pt without optimiser state, best.pt with the weights, no temp files."""
    cfg = config_from_profile(SMOKE, "segnet", max_steps=4, val_every=2, patience=0, batch_size=2,
                              checkpoint_every=2, **TINY)
    out = train_segmenter(cfg, _train_parts(), seed=0, out_dir=tmp_path, progress=False)
    last = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=False)
    assert last["finished"] and last["step"] == 4
    assert "optimizers" not in last and "schedulers" not in last
    assert "best_weights" not in last["callbacks"]["early_stopping"]  # they are in best.pt
    assert set(best) == {"step", "module", "monitor", "value"} and best["step"] == out.best_step
    weight_bytes = sum(v.numel() * v.element_size() for v in out.module.net.state_dict().values())
    for name in ("last.pt", "best.pt"):  # weights plus a little, not weights + 2 Adam moments
        assert (tmp_path / "checkpoints" / name).stat().st_size < 1.5 * weight_bytes + 200_000
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    state = json.loads((tmp_path / "validation.json").read_text())
    assert [v["step"] for v in state["validations"]] == [2, 4] and state["best_step"] == out.best_step


def test_resumed_cell_removes_temp_files_of_a_killed_run(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    kw = dict(arch="segnet", train="R", data="synthetic-he", profile=SMOKE, seed=0, progress=False,
              overrides={**TINY, "max_steps": 2}, write_summary=False)
    row = run_cell(out=tmp_path, **kw)
    cell = Path(row["run_dir"])
    (cell / "result.json").unlink()  # killed before the cell was scored
    orphans = [cell / "checkpoints" / f".last.pt.{dead.pid}.k3j4h5g6.tmp.pt",
               cell / f".per_image.csv.{dead.pid}.abcd1234.tmp.csv", cell / ".overlay.png.a1b2c3d4.tmp.png"]
    for p in orphans:
        p.write_bytes(b"half")
    live = cell / "checkpoints" / f".best.pt.{os.getpid()}.zzzzzzzz.tmp.pt"
    live.write_bytes(b"being written")
    again = run_cell(out=tmp_path, resume=True, **kw)
    assert not any(p.exists() for p in orphans) and live.exists()
    assert again["pq_mean"] == row["pq_mean"]


@pytest.mark.slow
def test_trained_segmenter_beats_untrained_on_pq(tmp_path: Path) -> None:
    """50 steps of U-Net (resnet18) on 64 px crops of the built-in tiles: PQ rises from ~0 on
    the tiles with nuclei (about 0.7 per-image mean and 0.6 pooled after 40-60 steps for seeds 0
    and 1; the untrained net predicts nothing or noise)."""
    from gbench import segmentation
    from gbench.segmentation.targets import get_target

    cfg = config_from_profile(SMOKE, "unet", max_steps=50, batch_size=4, lr=1e-3, val_fraction=0.0)
    test = resolve_dataset("synthetic-he", "test", SMOKE, 0)
    trained = train_segmenter(cfg, _train_parts(), seed=0, out_dir=tmp_path, progress=False)
    ours = evaluate(trained.module, test, cfg.postprocess)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        fresh = SegmenterModule(segmentation.create("unet", encoder="resnet18"), get_target("binary"), 1e-3)
    base = evaluate(fresh, test, cfg.postprocess)
    assert ours["mean"]["pq"] > base["mean"]["pq"] + 0.15
    assert ours["pooled"]["pq"] > base["pooled"]["pq"] + 0.3
    assert len(ours["per_image"]) == len(test)


def test_same_seed_same_numbers(tmp_path: Path) -> None:
    kw = dict(arch="segnet", train="R", data="synthetic-he", profile=SMOKE, seed=0, progress=False,
              overrides=TINY, write_summary=False)
    a = run_cell(out=tmp_path / "a", **kw)
    b = run_cell(out=tmp_path / "b", **kw)
    for col in RESULT_COLUMNS:
        if col.endswith(("_mean", "_pooled")):
            assert a[col] == b[col]


def test_smoke_grid_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    write_synthetic_set(tmp_path / "synth" / "S", 8)
    out = tmp_path / "out"
    args = ["segment", "--train", "R,S3k", "--arch", "unet", "--arch", "segnet", "--data", "synthetic-he",
            "--profile", "smoke", "--synthetic", str(tmp_path / "synth"), "--out", str(out), "--no-progress", "--table"]
    assert run_cli(monkeypatch, *args) == 0
    text = capsys.readouterr().out
    assert "seed 0: DQ" in text and "0.825" in text  # U-Net R, the paper's DQ
    table = (out / "table.md").read_text()
    assert "paper DQ" in table and "S3k (scaled to 6)" in table
    assert "| U-Net | R | 1 |" in table and "| 0.825 | 0.795 | 0.658 | 0.670 |" in table  # Sharp-GAN U-Net R

    res = pd.read_csv(out / "results.csv")
    assert tuple(res.columns) == RESULT_COLUMNS
    assert sorted(zip(res["arch"], res["train_set"])) == [("segnet", "R"), ("segnet", "S3k"), ("unet", "R"), ("unet", "S3k")]
    assert (res.loc[res["train_set"] == "S3k", ["n_real", "n_synthetic"]].to_numpy() == [0, 6]).all()
    assert (res.loc[res["train_set"] == "R", ["n_real", "n_synthetic"]].to_numpy() == [6, 0]).all()
    assert set(res["train_label"]) == {"R", "S3k (scaled to 6)"}
    assert (res["profile"] == "smoke").all() and (res["seed"] == 0).all() and (res["target"] == "binary").all()
    for m in ("dq", "sq", "pq", "aji", "aji_plus"):
        assert res[f"{m}_mean"].between(0, 1).all() and res[f"{m}_pooled"].between(0, 1).all()
    assert json.loads(res["postprocess"][0])["method"] == "connected-components"

    cell = out / "unet" / "S3k" / "binary" / "seed0"
    rec = json.loads((cell / "result.json").read_text())
    assert set(rec["metrics"]) >= {"mean", "pooled"} and rec["metrics"]["pooled"]["mode"] == "pooled"
    assert rec["train_parts"][0]["source"] == str(tmp_path / "synth" / "S") and rec["train_parts"][0]["paper_count"] == 3000
    assert "aji" in rec["conventions"] and rec["provenance"]["profile"] == "smoke"
    assert len(pd.read_csv(cell / "per_image.csv")) == SMOKE.data.builtin_test

    from gbench.core.records import load_records

    records = load_records(out / "records.csv")
    # four cells and the floor segmenter (issue 24: no training, scored on the same test images)
    assert len(records) == (4 + 1) * 5 * 2 and set(records["aggregation"]) == {"mean", "pooled"}
    assert table.count("\n| ") == 4 + 1 + 1 and "| HED watershed | (floor) | 1 |" in table

    # --resume reuses finished cells: nothing retrained, nothing appended
    stamp = (cell / "result.json").stat().st_mtime_ns
    assert run_cli(monkeypatch, *args, "--resume") == 0
    assert (cell / "result.json").stat().st_mtime_ns == stamp
    assert len(pd.read_csv(out / "results.csv")) == 4


def test_cli_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(monkeypatch, "segment", "--train", "R+", "--profile", "smoke", "--out", str(tmp_path)) == 2
    assert "empty part" in capsys.readouterr().err
    assert run_cli(monkeypatch, "segment", "--train", "S3k", "--data", "synthetic-he", "--profile", "smoke",
                   "--synthetic", str(tmp_path / "none"), "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "no synthetic set for 'S3k'" in err and len(err.strip().splitlines()) == 1
    assert run_cli(monkeypatch, "segment", "--arch", "unett", "--profile", "smoke", "--out", str(tmp_path)) == 2
    assert "did you mean unet" in capsys.readouterr().err
    assert not (tmp_path / "results.csv").exists()


def _ddp_cell_worker(rank: int, world: int, port: int, out: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = config_from_profile(SMOKE, "segnet", max_steps=6, val_every=2, patience=0, batch_size=4, **TINY)
    res = train_segmenter(cfg, _train_parts(), seed=0, out_dir=Path(out) / "cell", progress=False, device="cpu")
    torch.save({"steps": res.steps_done, "validations": res.validations,
                "weights": {k: v.clone() for k, v in res.module.net.state_dict().items()}},
               Path(out) / f"rank{rank}.pt")


@pytest.mark.slow
def test_cell_under_ddp_two_cpu_processes(tmp_path: Path) -> None:
    """Two gloo ranks train one cell: rank 0 validates and writes, both ranks run every step."""
    import torch.multiprocessing as mp

    from tests.engine.test_engine import _free_port

    mp.spawn(_ddp_cell_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["steps"] == r1["steps"] == 6
    assert [v["step"] for v in r0["validations"]] == [2, 4, 6] and r1["validations"] == []  # rank 0 validates
    last = torch.load(tmp_path / "cell" / "checkpoints" / "last.pt", weights_only=False)
    assert last["world_size"] == 2 and last["step"] == 6 and "optimizers" not in last
    best = torch.load(tmp_path / "cell" / "checkpoints" / "best.pt", weights_only=False)
    # rank 0 holds the best weights; rank 1 the last ones (equal to last.pt's, DDP kept the ranks in step)
    for k, v in best["module"].items():
        assert torch.equal(r0["weights"][k], v), k
    for k, v in r1["weights"].items():
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(last["module"]["net." + k], v), k
