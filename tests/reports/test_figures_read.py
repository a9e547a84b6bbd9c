"""Figures people read (axes, labels, legend, CI bars, the paper's markers), the self-contained
report.html, and `gbench report` / `gbench regress` reading Parquet as well as CSV."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from gbench.core.observations import save_observations
from gbench.core.records import save_records
from gbench.reports.figures import TRAIN_SET_ORDER, grouped_bars_figure, pq_figure, stain_figure
from gbench.reports.tables import display_name
from tests.reports.fixtures import fixed_records, observations_for
from tests.cli.test_cli import run_cli


def _paper_scope(recs):  # the paper's data and protocol: the paper's values are comparable
    recs = recs.copy()
    recs["dataset"], recs["profile"] = "cpm15+cpm17", "paper"
    return recs


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def _markers(ax) -> list:  # scatter points (the paper's values); error bars are LineCollections
    return [c for c in ax.collections if type(c).__name__ == "PathCollection"]


def _bars(ax) -> list:
    return [p for c in ax.containers for p in getattr(c, "patches", [])]


def test_segmentation_figure_grouped_by_architecture_with_ci_and_paper_markers() -> None:
    recs = fixed_records()
    seg = recs[recs.kind == "segmentation"]
    obs = observations_for(seg)
    fig = grouped_bars_figure(_paper_scope(seg), observations=_paper_scope(obs), n_resamples=200)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["DQ ↑", "SQ ↑", "PQ ↑", "AJI ↑"]
    for ax in axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["SegNet", "U-Net"]  # groups: architectures
        assert ax.get_xlabel() == "architecture"
        bars = _bars(ax)
        assert len(bars) == 10  # 2 architectures x 5 training sets
        # hue = training set in the fixed order, one colour each, the same in both groups
        colors = [b.get_facecolor() for b in sorted(bars, key=lambda b: b.get_x())]
        assert colors[:5] == colors[5:] and len(set(colors[:5])) == 5
        errs = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
        assert len(errs) == 10  # a CI error bar on every bar
        paper = _markers(ax)
        assert len(paper) == 10  # the paper's value beside every cell
    assert _legend_texts(fig) == [display_name(t) for t in TRAIN_SET_ORDER] + ["paper"]
    assert fig.legends[0].get_title().get_text() == "error bars: 95% CI"
    # PQ of U-Net R+S (3k): the bar height is our estimate, the marker the paper's value (0.671)
    pq = axes[2]
    x_unet = 1 + (TRAIN_SET_ORDER.index("R+S3k") - 2) * 0.16
    marker = [c for c in _markers(pq) if np.isclose(c.get_offsets()[0][0], x_unet)]
    assert marker and marker[0].get_offsets()[0][1] == pytest.approx(0.671)
    bar = [b for b in _bars(pq) if np.isclose(b.get_x() + b.get_width() / 2, x_unet)]
    assert bar[0].get_height() == pytest.approx(0.671, abs=1e-9)  # fixtures: mean = the paper's value


def test_no_paper_markers_where_not_comparable_and_failed_runs_have_no_bar() -> None:
    seg = fixed_records()
    seg = seg[seg.kind == "segmentation"].copy()
    bad = (seg.model == "unet") & (seg.train_set == "S3k")
    seg.loc[bad, ["status", "failure"]] = ["failed", "no foreground"]
    fig = grouped_bars_figure(seg, metrics=["pq"])  # smoke profile on synthetic-he: not the paper's protocol
    ax = fig.axes[0]
    assert not _markers(ax) and "paper" not in _legend_texts(fig)
    assert len(_bars(ax)) == 9 and "failed" in [t.get_text() for t in ax.texts]
    assert fig.legends[0].get_title().get_text() == "error bars: ± std over seeds"


def test_quality_bars_and_pq_curve_with_ci_band() -> None:
    recs = fixed_records()
    q = recs[recs.kind == "quality"]
    fig = grouped_bars_figure(_paper_scope(q), observations=_paper_scope(observations_for(q)), hue=None,
                              n_resamples=200)
    assert [ax.get_title() for ax in fig.axes] == ["SSIM ↑", "FSIM ↑", "GMSD ↓", "NRMSE ↓"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["GAN-Binary", "GAN-DIST", "Sharp-GAN"]
    assert len(_markers(fig.axes[0])) == 3 and _legend_texts(fig) == ["paper"]
    seg = recs[recs.kind == "segmentation"]
    fig = pq_figure(seg, observations=observations_for(seg), n_resamples=200)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "synthetic training images" and ax.get_ylabel() == "PQ ↑"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["SegNet, R + S", "SegNet, S only", "U-Net, R + S", "U-Net, S only"]
    assert ax.get_legend().get_title().get_text() == "band: 95% CI"
    bands = [c for c in ax.collections if type(c).__name__ in ("PolyCollection", "FillBetweenPolyCollection")]
    assert len(bands) == 4  # one CI band per line
    line = ax.get_lines()[2]  # U-Net, R + S: R at 0, R+S3k, R+S10k
    np.testing.assert_allclose(line.get_ydata(), [0.658, 0.671, 0.669])


def test_stain_figure_axes() -> None:
    from gbench.metrics.stain import StainHistograms, stain_distances

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    labels = np.zeros((2, 16, 16), np.int32)
    labels[:, 4:10, 4:10] = 1
    h = StainHistograms()
    h.update(imgs, True, labels)
    h.update(imgs[::-1], False, labels)
    fig = stain_figure(h, stain_distances(h))
    assert len(fig.axes) == 6
    assert fig.axes[0].get_title().startswith("hematoxylin, nuclei (W1 ")
    assert fig.axes[5].get_title().startswith("eosin, all")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["real", "synthetic"]


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_html_is_one_self_contained_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recs = _paper_scope(fixed_records())
    path = save_records(recs, tmp_path / "records.csv")
    save_observations(_paper_scope(observations_for(fixed_records())), path)
    out = tmp_path / "report"
    assert run_cli(monkeypatch, "report", str(path), "--out", str(out), "--resamples", "200") == 0
    p = _Collect()
    p.feed((out / "report.html").read_text(encoding="utf-8"))
    text = " ".join(p.text)
    headings = [t for t in p.text if t.strip()]
    for section in ("Results", "Ours vs the paper", "Paper claims", "Figures", "Provenance"):
        assert section in headings, section
    assert sum(1 for tag, _ in p.tags if tag == "table") >= 4  # quality, segmentation, comparison, claims
    imgs = [a for tag, a in p.tags if tag == "img"]
    manifest = json.loads((out / "manifest.json").read_text())
    pngs = [f for f in manifest["files"] if f.endswith(".png")]
    assert len(imgs) == len(pngs) == 3  # every figure of the folder is in the page
    assert all(a["src"].startswith("data:image/png;base64,") for a in imgs)
    for tag, attrs in p.tags:  # nothing loaded from anywhere else
        for key in ("src", "href"):
            value = attrs.get(key)
            assert value is None or value.startswith(("data:", "#")), (tag, key, value)
        assert tag not in ("script", "link", "iframe"), tag
    assert "Sharp-GAN, Table 2" in text and "supported" in text


def test_report_and_regress_read_parquet_like_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    recs = fixed_records()
    csv = save_records(recs, tmp_path / "base" / "records.csv")
    manifest = json.loads((tmp_path / "base" / "records.manifest.json").read_text())
    assert manifest["files"] == ["records.csv", "records.parquet"]  # the manifest lists both
    parquet = csv.with_suffix(".parquet")
    for src, name in ((csv, "from-csv"), (parquet, "from-parquet")):
        assert run_cli(monkeypatch, "report", str(src), "--out", str(tmp_path / name), "--reference", "none") == 0
    a = (tmp_path / "from-csv" / "tables" / "segmentation.md").read_text()
    assert a == (tmp_path / "from-parquet" / "tables" / "segmentation.md").read_text()
    # regress: Parquet baseline vs CSV, both ways; a planted regression is caught from Parquet too
    assert run_cli(monkeypatch, "regress", str(parquet), str(csv)) == 0
    assert run_cli(monkeypatch, "regress", str(csv), str(parquet)) == 0
    worse = recs.copy()
    worse.loc[worse.metric == "pq", "value"] -= 0.05
    new = save_records(worse, tmp_path / "new" / "records.csv")
    capsys.readouterr()
    assert run_cli(monkeypatch, "regress", str(parquet), str(new.with_suffix(".parquet"))) == 1
    assert "regression" in capsys.readouterr().out
    # a folder with only the Parquet file is read as well
    only = tmp_path / "only"
    only.mkdir()
    parquet.rename(only / "records.parquet")
    assert run_cli(monkeypatch, "report", str(only), "--out", str(tmp_path / "from-folder"), "--reference", "none") == 0
    (only / "records.parquet").write_bytes(b"not parquet")
    assert run_cli(monkeypatch, "report", str(only / "records.parquet"), "--out", str(tmp_path / "bad")) == 2
    assert "unreadable Parquet" in capsys.readouterr().err
