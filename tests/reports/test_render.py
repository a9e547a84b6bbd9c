"""Tables and renderers on a fixed record set: golden Markdown/LaTeX, best-in-bold, arrows, ± std, seeds."""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gbench.core.records import records_from_dicts
from gbench.reports.render import html_page, latex_escape, to_csv, to_html, to_latex, to_markdown, to_rich
from gbench.reports.tables import pivot, pivot_by_kind, summarize
from tests.reports.fixtures import PROV, QUALITY, QUALITY_D, SEG_D, SEGMENTATION, fixed_records, observations_for

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GBENCH_UPDATE_GOLDEN") == "1"


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"golden file {path} missing (run with GBENCH_UPDATE_GOLDEN=1 once and inspect it)"
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tables() -> dict[str, object]:
    return {t.kind: t for t in pivot_by_kind(fixed_records())}


@pytest.mark.parametrize("kind", ["quality", "segmentation"])
def test_golden_markdown_and_latex(tables: dict, kind: str) -> None:
    _golden(f"{kind}.md", to_markdown(tables[kind]))
    _golden(f"{kind}.tex", to_latex(tables[kind], label=f"tab:{kind}"))


def test_summary_matches_numpy(tables: dict) -> None:
    """mean and std (ddof=1) over seeds, recomputed literally from the records."""
    recs = fixed_records()
    t = tables["segmentation"]
    for (arch, ts), vals in SEGMENTATION.items():
        for m, v in zip(("dq", "sq", "pq", "aji"), vals):
            x = recs[(recs.model == arch) & (recs.train_set == ts) & (recs.metric == m)]["value"].to_numpy()
            mean, std, seeds = t.cell((arch, ts), m)
            assert mean == pytest.approx(x.mean(), abs=1e-12)
            assert seeds == len(x)
            if len(x) > 1:
                assert std == pytest.approx(np.std(x, ddof=1), abs=1e-12)
                assert std == pytest.approx(SEG_D * math.sqrt(2), abs=1e-12)
            else:
                assert math.isnan(std)
    q = tables["quality"]
    for model, d in QUALITY_D.items():
        assert q.cell((model,), "ssim")[1] == pytest.approx(d, abs=1e-12)
        assert q.cell((model,), "gmsd")[0] == pytest.approx(QUALITY[model]["gmsd"], abs=1e-12)


def test_best_follows_direction(tables: dict) -> None:
    q = tables["quality"]
    assert q.best("ssim") == {("sharp-gan",)}   # higher is better
    assert q.best("gmsd") == {("sharp-gan",)}   # lower is better: 0.147 is the minimum
    s = tables["segmentation"]
    assert s.best("sq") == {("unet", "R+S3k")}  # 0.800
    assert s.best("pq") == {("unet", "R+S3k")}  # 0.671 beats R+S10k 0.669
    assert s.best("dq") == {("unet", "R+S10k")}


def test_bold_markup_and_arrows(tables: dict) -> None:
    md = to_markdown(tables["quality"])
    assert "SSIM ↑" in md and "GMSD ↓" in md and "NRMSE ↓" in md
    assert md.count("**0.") == 4  # one bold per column
    assert "**0.147** ± 0.002" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| GAN") or ln.startswith("| Sharp")]
    assert len(rows) == 3 and all(re.search(r"\|\s+3 \|\s+8 \|$", ln) for ln in rows)  # seed and image counts
    assert md.rstrip().endswith("_± std over seeds where there is no per-image data (no confidence interval)_")
    tex = to_latex(tables["quality"])
    assert r"GMSD $\downarrow$" in tex and r"SSIM $\uparrow$" in tex
    assert r"\textbf{0.147} $\pm$ 0.002" in tex
    assert tex.count(r"\textbf") == 4 and r"\toprule" in tex and r"\bottomrule" in tex


def test_single_seed_row_shows_mean_only(tables: dict) -> None:
    s = tables["segmentation"]
    assert s.row_seeds(("segnet", "S10k")) == "1" and s.row_seeds(("unet", "R")) == "2"
    line = next(ln for ln in to_markdown(s).splitlines() if "S (10k)" in ln and "SegNet" in ln)
    assert "±" not in line and "0.727" in line


def test_ties_are_all_bold() -> None:
    rows = [{"kind": "quality", "model": m, "train_set": "R", "profile": "smoke", "seed": 0, "dataset": "d",
             "split": "test", "metric": "ssim", "value": v, "n": 1} for m, v in (("a", 0.5001), ("b", 0.4999),
                                                                              ("c", 0.3))]
    t = pivot(records_from_dicts(rows))
    assert t.best("ssim") == {("a",), ("b",)}  # equal at 3 decimals
    assert to_markdown(t).count("**0.500**") == 2


def test_unknown_metric_direction_no_arrow_no_bold() -> None:
    rows = [{"kind": "quality", "model": m, "train_set": "R", "profile": "smoke", "seed": 0, "dataset": "d",
             "split": "test", "metric": "lpips", "value": v, "n": 1} for m, v in (("a", 0.1), ("b", 0.2))]
    t = pivot(records_from_dicts(rows))
    md = to_markdown(t)
    assert "LPIPS" in md
    assert "↑" not in md and "↓" not in md and "**0" not in md


def test_pivot_refuses_hidden_varying_key() -> None:
    recs = fixed_records()
    recs2 = recs.copy()
    recs2["dataset"] = "cpm17"
    both = pd.concat([recs, recs2], ignore_index=True)
    q = both[both.kind == "quality"]
    t = pivot(q)  # dataset varies: it becomes a row key
    assert "dataset" in t.row_keys and len(t.rows) == 6
    with pytest.raises(ValueError, match="vary in dataset"):
        pivot(q, rows=["model"])


def test_csv_full_precision_and_html(tables: dict) -> None:
    csv = to_csv(tables["quality"])
    frame = pd.read_csv(pd.io.common.StringIO(csv))
    assert list(frame.columns[:4]) == ["model", "ssim_mean", "ssim_std", "ssim_seeds"]
    assert frame.loc[frame.model == "gan-dist", "ssim_std"].item() == pytest.approx(0.010, abs=1e-12)
    frag = to_html(tables["segmentation"])
    assert "<b>0.800</b>" in frag and "AJI ↑" in frag
    page = html_page("t", [("Results", frag)], [("fig", b"\x89PNG\r\n\x1a\nfake")], {"gbench_version": "0.1.0"})
    assert "data:image/png;base64,iVBORw0KGgpmYWtl" in page
    assert not re.search(r"(src|href)=['\"]https?:", page)  # self-contained
    with pytest.raises(ValueError, match="not a PNG"):
        html_page("t", [], [("fig", b"GIF89a")])


def test_rich_and_escape(tables: dict) -> None:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(to_rich(tables["segmentation"]))
    text = console.export_text()
    assert "R+S (10k)" in text and "0.800 ± 0.007" in text and "Seeds" in text
    assert latex_escape("a_b & 5% #1") == r"a\_b \& 5\% \#1"


def test_summarize_columns() -> None:
    s = summarize(fixed_records(), ["kind", "model", "train_set"])
    assert list(s.columns) == ["kind", "model", "train_set", "metric", "mean", "std", "seeds", "n", "ci_low", "ci_high",
                               "ci_method", "ci_source", "n_images", "status", "failure"]
    assert len(s) == 3 * 4 + 10 * 4
    assert PROV["device"] not in s.to_string()


def test_cells_show_the_ci_from_observations_across_seeds() -> None:
    from gbench.core import stats

    recs = fixed_records()
    obs = observations_for(recs)
    (q, s) = pivot_by_kind(recs, obs, n_resamples=500)
    cell = s.estimate(("unet", "R"), "pq")
    sel = obs[(obs.model == "unet") & (obs.train_set == "R")]
    est = stats.estimate(sel, "pq", n_resamples=500)
    assert est.n_seeds == 2 and (cell.ci_low, cell.ci_high) == (est.ci_low, est.ci_high)
    assert cell.mean == pytest.approx(0.658, abs=1e-12) and cell.n_images == 16
    md = to_markdown(s)
    assert f"0.658 [{est.ci_low:.3f}, {est.ci_high:.3f}]" in md and "±" not in md.split("\n\n")[1]
    assert "t-interval" in md and re.search(r"\|\s+16 \|$", md.splitlines()[4])  # 16 units < T_INTERVAL_BELOW
    tex = to_latex(q)
    assert r"\textbf{0.756} {\scriptsize [" in tex
    frame = pd.read_csv(pd.io.common.StringIO(to_csv(q)))
    assert frame["ssim_ci_low"].notna().all() and set(frame["ssim_status"]) == {"ok"}


def test_cells_use_the_records_ci_for_one_seed() -> None:
    recs = fixed_records()
    one = recs[(recs.kind == "quality") & (recs.seed == 0)].copy()
    one["ci_low"], one["ci_high"], one["ci_method"] = one["value"] - 0.01, one["value"] + 0.02, "given"
    t = pivot(one)
    assert "0.573 [0.563, 0.593]" in to_markdown(t)  # gan-binary seed 0: 0.577 - 0.004


def test_failed_runs_are_shown_as_failed() -> None:
    recs = fixed_records()
    seg = recs[recs.kind == "segmentation"].copy()
    bad = (seg.model == "segnet") & (seg.train_set == "R") & (seg.seed == 1)
    seg.loc[bad, "status"], seg.loc[bad, "failure"] = "failed", "no foreground predicted on the test split"
    seg.loc[bad, "value"] = 0.0
    t = pivot(seg)
    md = to_markdown(t)
    line = next(ln for ln in md.splitlines() if ln.startswith("| SegNet  | R   "))
    assert line.count("*failed*") == 4 and "0.000" not in line and "0.38" not in line
    assert "failed (no foreground predicted on the test split): SegNet R (seed 1) — a run that did not learn" in md
    assert t.best("dq") == {("unet", "R+S10k")}
    assert r"\textit{failed}" in to_latex(t) and "<td class='failed'>failed</td>" in to_html(t)
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(to_rich(t))
    assert "failed" in console.export_text()
    # failed in the observations only: the cell is failed too
    obs = observations_for(recs[recs.kind == "segmentation"])
    sel = (obs.model == "unet") & (obs.train_set == "S3k")
    obs.loc[sel, "status"], obs.loc[sel, "failure"] = "failed", "one component or fewer per image"
    t2 = pivot(recs[recs.kind == "segmentation"], observations=obs, n_resamples=200)
    assert t2.estimate(("unet", "S3k"), "pq").failed


def test_floor_generator_marks() -> None:
    """Table 1: a GAN that does not significantly beat the mask-paint floor is marked (paired tests)."""
    values = {m: dict(v) for m, v in QUALITY.items()}
    values["mask-paint"] = dict(values["gan-binary"])
    values["mask-paint"]["ssim"] = values["gan-binary"]["ssim"] - 0.05  # the floor loses on SSIM only...
    values["mask-paint"]["fsim"] = values["gan-binary"]["fsim"] - 0.0002  # ...and by a hair on FSIM
    from tests.reports.fixtures import quality_rows

    recs = records_from_dicts(quality_rows(values))
    obs = observations_for(recs, noise_sd=0.01)
    t = pivot(recs, observations=obs, n_resamples=500)
    marks = {(r[0], m) for r, m in t.below_floor}
    assert ("gan-binary", "fsim") in marks and ("gan-binary", "gmsd") in marks and ("gan-binary", "nrmse") in marks
    assert ("gan-binary", "ssim") not in marks
    assert not any(r == "sharp-gan" for r, _ in marks)
    md = to_markdown(t)
    assert "Mask-paint (floor)" in md and "†" in md and "paired test, Holm" in md
    by_means = pivot(recs)
    assert {(r[0], m) for r, m in by_means.below_floor} == {("gan-binary", "gmsd"), ("gan-binary", "nrmse")}
    assert "by means" in to_markdown(by_means)


def test_compact_rich_keeps_row_labels_at_80_columns(tables: dict) -> None:
    """A terminal of 80 columns: the row names must survive (rich used to shrink them to nothing)
    and the numbers fold rather than vanish behind an ellipsis."""
    from rich.console import Console

    for compact in (False, True):
        console = Console(width=80, record=True)
        console.print(to_rich(tables["segmentation"], compact=compact))
        text = console.export_text()
        assert "R+S (10k)" in text and "U-Net" in text and "SegNet" in text, text
        assert "…" not in text
        assert "0.800" in text
    # compact: rows with equal counts get one caption line for them instead of two columns
    console = Console(width=120, record=True)
    console.print(to_rich(tables["segmentation"], compact=True, only={"model": "unet"}))
    text = console.export_text()
    assert "Seeds" not in text and "every row: 2 seed(s), 8 test images" in text and "SegNet" not in text


def test_compact_rich_only_filters_rows(tables: dict) -> None:
    from rich.console import Console

    t = tables["segmentation"]
    console = Console(width=200, record=True)
    console.print(to_rich(t, only={"train_set": "R"}))
    text = console.export_text()
    assert "R+S (10k)" not in text and "more rows in the report" in text
