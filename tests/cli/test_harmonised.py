"""One spelling per concept (issue 25): old spellings still work with one deprecation line,
``--device`` wherever a model runs, ``--profile`` choices, ``--json`` summaries, the FID hint.

An old spelling must reach the pipeline exactly as the new one does: the pipeline function is
replaced by a spy that records its arguments and stops the command (:class:`Stop`), so no
model trains.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pandas as pd
import pytest
import typer.main

from gbench.cli import app
from tests.cli.test_cli import invoke

DEPRECATED = "is deprecated; use"


class Stop(Exception):
    """Raised by a spy in place of the pipeline: the command got that far."""


def spy(monkeypatch: pytest.MonkeyPatch, target: str) -> list[tuple[tuple, dict]]:
    """Replace ``module:function`` with a recorder that stops the command."""
    import importlib

    module, name = target.split(":")
    calls: list[tuple[tuple, dict]] = []

    def record(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, dict(kwargs, _env=os.environ.get("CUDA_VISIBLE_DEVICES"))))
        raise Stop

    monkeypatch.setattr(importlib.import_module(module), name, record)
    return calls


@pytest.fixture(scope="module")
def records_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixed report records with per-image observations beside them."""
    from gbench.core.observations import save_observations
    from gbench.core.records import save_records
    from tests.reports.fixtures import fixed_records, observations_for

    root = tmp_path_factory.mktemp("records")
    recs = fixed_records()
    save_records(recs, root / "records.csv")
    save_observations(observations_for(recs), root / "records.csv")
    return root


def _kw(name: str) -> Callable[[tuple, dict], Any]:
    return lambda args, kwargs: kwargs[name]


def _df(args: tuple, kwargs: dict) -> Any:
    assert set(args[0]["seed"]) == {1} and set(args[0]["profile"]) == {"smoke"}  # the filters were applied
    return args[0].sort_values(["metric", "model", "train_set", "seed"]).to_csv(index=False)


# (old command line, new command line, pipeline function, what must be equal, deprecation lines of the old)
CASES: dict[str, tuple[list[str], list[str], str, Callable[[tuple, dict], Any], int]] = {
    "reproduce --archs": (["reproduce", "--archs", "unet,segnet"], ["reproduce", "--arch", "unet", "--arch", "segnet"],
                          "gbench.pipelines.reproduce:reproduce_sharp_gan", _kw("archs"), 1),
    "reproduce --generators": (["reproduce", "--generators", "mask-paint,dummy"],
                               ["reproduce", "--generator", "mask-paint", "--generator", "dummy"],
                               "gbench.pipelines.reproduce:reproduce_sharp_gan", _kw("generators"), 1),
    "reproduce --train string": (["reproduce", "--train", "R,S3k"], ["reproduce", "--train", "R", "--train", "S3k"],
                                 "gbench.pipelines.reproduce:reproduce_sharp_gan", _kw("train_sets"), 0),
    "train-migan": (["train-migan", "--data", "synthetic-cells:siha", "--steps", "3"],
                    ["train-mi-gan", "--data", "synthetic-cells:siha", "--steps", "3"],
                    "gbench.generators.mi_gan_train:train_migan", lambda a, k: (a[0], k["steps"], k["seed"]), 1),
    "sample-migan": (["sample-migan", "{run}", "-n", "3"], ["sample-mi-gan", "{run}", "--count", "3"],
                     "gbench.generators.mi_gan_train:sample_to_folder", lambda a, k: (a[2], k["seed"], k["fmt"]), 1),
    "sample --n": (["sample-mi-gan", "{run}", "--n", "3"], ["sample-mi-gan", "{run}", "-n", "3"],
                   "gbench.generators.mi_gan_train:sample_to_folder", lambda a, k: a[2], 1),
    "--inception-weights": (["quality-multifocus", "--real", "synthetic-cells:siha", "--fake", "x", "--inception-weights",
                             "w.pt"],
                            ["quality-multifocus", "--real", "synthetic-cells:siha", "--fake", "x", "--weights", "w.pt"],
                            "gbench.pipelines.multifocus:quality_multifocus", _kw("inception_weights"), 1),
    "regress --seed": (["regress", "{rec}", "{rec}", "--seed", "1"], ["regress", "{rec}", "{rec}", "--only-seed", "1"],
                       "gbench.reports.regress:regress", _kw("seed"), 1),
    "regress --profile": (["regress", "{rec}", "{rec}", "--profile", "smoke"],
                          ["regress", "{rec}", "{rec}", "--only-profile", "smoke"],
                          "gbench.reports.regress:regress", _kw("profile"), 1),
    "report --seed --profile": (["report", "{rec}", "--seed", "1", "--profile", "smoke"],
                                ["report", "{rec}", "--only-seed", "1", "--only-profile", "smoke"],
                                "gbench.reports.report:write_report", _df, 2),
    "compare --seed": (["compare", "{rec}", "--a", "model=sharp-gan", "--b", "model=gan-dist", "--seed", "7"],
                       ["compare", "{rec}", "--a", "model=sharp-gan", "--b", "model=gan-dist", "--resample-seed", "7"],
                       "gbench.reports.paired:compare_selected", _kw("seed"), 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_old_spelling_warns_once_and_works_as_the_new(case: str, tmp_path: Path, records_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    old, new, target, pick, lines = CASES[case]
    run = tmp_path / "run"
    run.mkdir()
    (run / "mi-gan.pt").write_bytes(b"")
    fill = {"{run}": str(run), "{rec}": str(records_dir / "records.csv")}
    outs = {"reproduce": ["--data", "synthetic-he", "--profile", "smoke"], "train-migan": ["--profile", "smoke"],
            "train-mi-gan": ["--profile", "smoke"], "sample-migan": [], "sample-mi-gan": []}
    seen = []
    for n, argv in enumerate((old, new)):
        calls = spy(monkeypatch, target)
        args = [fill.get(a, a) for a in argv] + outs.get(argv[0], [])
        if argv[0] in ("reproduce", "train-migan", "train-mi-gan", "sample-migan", "sample-mi-gan", "report"):
            args += ["--out", str(tmp_path / f"out{n}")]
        res = _invoke(*args)
        assert isinstance(res.exception, Stop), (args, res.exit_code, res.stderr)
        warnings = [line for line in res.stderr.splitlines() if DEPRECATED in line]
        assert len(warnings) == (lines if n == 0 else 0), (args, res.stderr)
        seen.append(pick(*calls[0]))
    assert seen[0] == seen[1]
    assert seen[0] not in (None, [], ())


def _invoke(*args: str) -> Any:
    """Like :func:`tests.cli.test_cli.invoke`, but an exception stays in the result."""
    from typer.testing import CliRunner

    return CliRunner().invoke(app, list(args), prog_name="gbench")


def test_the_deprecation_line_names_the_new_spelling(monkeypatch: pytest.MonkeyPatch) -> None:
    spy(monkeypatch, "gbench.pipelines.reproduce:reproduce_sharp_gan")
    res = _invoke("reproduce", "--archs", "unet", "--data", "synthetic-he", "--profile", "smoke", "--out", "/nonexistent/x")
    assert "--archs is deprecated; use --arch (repeatable) or --arch a,b" in res.stderr


def test_old_and_new_spelling_that_disagree_are_refused(records_dir: Path) -> None:
    rec = str(records_dir / "records.csv")
    res = invoke("compare", rec, "--a", "model=sharp-gan", "--b", "model=gan-dist", "--seed", "1", "--resample-seed", "2")
    assert res.exit_code == 2 and "--seed (deprecated) and --resample-seed disagree" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 2  # the deprecation line, then the error


def _commands(group: click.Command, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    out = {}
    for name, cmd in getattr(group, "commands", {}).items():
        out[(*prefix, name)] = cmd
        out.update(_commands(cmd, (*prefix, name)))
    return out


#: Commands that run a model (a generator, a segmenter or a feature extractor).
MODEL_COMMANDS = [("quality",), ("quality-multifocus",), ("sample-mi-gan",), ("train-mi-gan",), ("reproduce",),
                  ("demo",), ("demo", "mi-gan"), ("segment",), ("train-gen",), ("synthesize",), ("bench",)]


@pytest.mark.parametrize("path", MODEL_COMMANDS, ids=" ".join)
def test_every_command_that_runs_a_model_lists_device(path: tuple[str, ...]) -> None:
    res = invoke(*path, "--help")
    assert res.exit_code == 0 and "--device" in res.stdout


def test_help_hides_the_old_spellings_and_shows_profile_choices() -> None:
    from gbench.core.profiles import PROFILES

    root = typer.main.get_command(app)
    cmds = _commands(root)
    visible = {p for p, c in cmds.items() if not c.hidden}
    assert ("train-mi-gan",) in visible and ("sample-mi-gan",) in visible
    assert ("train-migan",) not in visible and ("sample-migan",) not in visible
    old = {"--archs", "--generators", "--inception-weights", "--n"}
    for path, cmd in cmds.items():
        shown = {o for p in cmd.params if not getattr(p, "hidden", False) for o in p.opts}
        assert not shown & old, (path, shown & old)
        if path[0] in ("report", "regress", "compare"):
            assert "--seed" not in shown, path
    help_text = invoke("quality", "--help").stdout
    assert all(name in help_text for name in PROFILES) and "FILE.toml" in help_text
    assert "--install-completion" in invoke("--help").stdout


def test_demo_passes_its_options_to_mi_gan(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = spy(monkeypatch, "gbench.pipelines.migan_demo:demo_migan")
    res = _invoke("demo", "--profile", "smoke", "--seed", "4", "--device", "cpu", "mi-gan", "--out", str(tmp_path / "a"))
    assert isinstance(res.exception, Stop), res.stderr
    _, kw = calls[-1]
    assert kw["profile"].name == "smoke" and kw["seed"] == 4 and kw["device"] == "cpu"
    res = _invoke("demo", "--profile", "smoke", "mi-gan", "--profile", "demo", "--out", str(tmp_path / "b"))
    assert calls[-1][1]["profile"].name == "demo"  # the subcommand's own option wins


def test_device_cpu_hides_cuda_while_the_command_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    calls = spy(monkeypatch, "gbench.pipelines.multifocus:quality_multifocus")
    res = _invoke("quality-multifocus", "--real", "synthetic-cells:siha", "--fake", "x", "--device", "cpu")
    assert isinstance(res.exception, Stop), res.stderr
    assert calls[0][1]["_env"] == ""  # the pipeline saw no GPU
    assert "CUDA_VISIBLE_DEVICES" not in os.environ  # and the process got its environment back
    res = _invoke("quality-multifocus", "--real", "synthetic-cells:siha", "--fake", "x", "--device", "tpu")
    assert res.exit_code == 2 and "--device 'tpu'" in res.stderr


def test_metric_fid_says_where_fid_lives(records_dir: Path, tmp_path: Path) -> None:
    res = invoke("quality", "--real", str(tmp_path), "--fake", str(tmp_path), "--metric", "fid")
    assert res.exit_code == 2 and "FID is a distribution metric: add --extractor NAME" in res.stderr
    res = invoke("compare", str(records_dir / "records.csv"), "--a", "model=sharp-gan", "--b", "model=gan-dist",
                 "--metric", "fid")
    assert res.exit_code == 2 and "FID is a distribution metric: add --extractor NAME" in res.stderr


# ----------------------------------------------------------------------------------------------- --json


def test_compare_json_holds_the_csv(records_dir: Path, tmp_path: Path) -> None:
    res = invoke("compare", str(records_dir / "records.csv"), "--a", "model=sharp-gan", "--b", "model=gan-dist",
                 "--resamples", "200", "--json", "--csv", str(tmp_path / "c.csv"))
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)  # nothing else on stdout
    csv = pd.read_csv(tmp_path / "c.csv")
    got = pd.DataFrame(doc["rows"])
    assert list(got["metric"]) == list(csv["metric"])
    for col in ("a", "b", "diff", "ci_low", "ci_high", "p"):
        assert got[col].to_numpy() == pytest.approx(csv[col].to_numpy(), rel=1e-12), col
    assert "Holm" in res.stderr or "verdict" in res.stderr  # the table went to stderr


def test_regress_json(records_dir: Path, tmp_path: Path) -> None:
    rec = records_dir / "records.csv"
    planted = pd.read_csv(rec)
    planted.loc[planted["metric"] == "pq", "value"] -= 0.1
    planted.to_csv(tmp_path / "planted.csv", index=False)
    res = invoke("regress", str(rec), str(tmp_path / "planted.csv"), "--json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and doc["worse"] == int((planted["metric"] == "pq").sum()) > 0
    cells = pd.DataFrame(doc["cells"])
    worse = cells[cells["status"] == "worse"]
    assert set(worse["metric"]) == {"pq"}
    assert (worse["new"] - worse["baseline"]).to_numpy() == pytest.approx(-0.1)
    assert json.loads(invoke("regress", str(rec), str(rec), "--json").stdout)["ok"] is True


def test_quality_json_holds_the_summary_csv(tmp_path: Path) -> None:
    from tests.data.test_loaders import write_folder

    write_folder(tmp_path / "real", ["a", "b", "c"], shape=(48, 48))
    _noisy_copy(tmp_path / "real", tmp_path / "fake")
    res = invoke("quality", "--real", str(tmp_path / "real" / "images"), "--fake", str(tmp_path / "fake" / "images"),
                 "--out", str(tmp_path / "q"), "--profile", "smoke", "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    summary = pd.read_csv(tmp_path / "q" / "summary.csv")
    got = pd.DataFrame(doc["summary"])
    assert list(got.columns) == list(summary.columns) and len(got) == len(summary) == 4
    num = summary.select_dtypes("number").columns
    assert got[num].to_numpy(dtype=float) == pytest.approx(summary[num].to_numpy(dtype=float), rel=1e-9)
    assert doc["n"] == 3


def _noisy_copy(src: Path, dst: Path) -> None:
    import shutil

    import numpy as np
    from PIL import Image

    shutil.copytree(src, dst)
    rng = np.random.default_rng(0)
    for p in (dst / "images").iterdir():
        arr = np.asarray(Image.open(p)).astype(int)
        Image.fromarray(np.clip(arr + rng.integers(-30, 30, arr.shape), 0, 255).astype(np.uint8)).save(p)


def test_segment_json_holds_results_csv(tmp_path: Path) -> None:
    from tests.cli.test_bad_inputs import write_split_dataset

    write_split_dataset(tmp_path / "ds")
    res = invoke("segment", "--data", str(tmp_path / "ds"), "--profile", "smoke", "--max-steps", "1",
                 "--no-progress", "--out", str(tmp_path / "seg"), "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    results = pd.read_csv(tmp_path / "seg" / "results.csv")
    cells = pd.DataFrame(doc["cells"])
    assert len(cells) == len(results) == 1
    for col in ("dq_mean", "sq_mean", "pq_mean", "aji_mean", "n_test"):
        assert float(cells[col].iloc[0]) == pytest.approx(float(results[col].iloc[0]), abs=1e-6), col
    assert doc["floor"]["arch"] and "floor (HED watershed" in res.stderr
