"""Paper reference tables (exact values), ours-vs-paper comparison, and the claims checker."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gbench.core.records import records_from_dicts
from gbench.errors import DataError
from reports.claims import check_claims, claims_markdown, sharp_gan_claims
from reports.compare import compare, comparison_markdown, load_reference, reference_records
from tests.reports.fixtures import QUALITY, fixed_records, quality_rows, segmentation_rows

# Transcribed independently from /work/shared/papers/sharp-gan.md, Tables 1 and 2.
TABLE1 = """GAN-Binary 0.577 0.735 0.178 0.306
GAN-DIST 0.681 0.763 0.163 0.259
Sharp-GAN 0.756 0.793 0.147 0.230"""
TABLE2 = """SegNet R 0.765 0.759 0.584 0.588
SegNet S(3k) 0.686 0.757 0.523 0.510
SegNet R+S(3k) 0.780 0.769 0.602 0.608
SegNet S(10k) 0.732 0.759 0.557 0.545
SegNet R+S(10k) 0.806 0.772 0.608 0.623
U-Net R 0.825 0.795 0.658 0.670
U-Net S(3k) 0.755 0.738 0.562 0.593
U-Net R+S(3k) 0.837 0.800 0.671 0.675
U-Net S(10k) 0.804 0.788 0.634 0.616
U-Net R+S(10k) 0.841 0.797 0.669 0.677"""


def test_reference_tables_hold_the_papers_exact_values() -> None:
    ref = load_reference("sharp-gan")
    names = {"GAN-Binary": "gan-binary", "GAN-DIST": "gan-dist", "Sharp-GAN": "sharp-gan", "SegNet": "segnet",
             "U-Net": "unet"}
    expected = {}
    for line in TABLE1.splitlines():
        model, *vals = line.split()
        expected.update({("quality", names[model], "R", m): float(v) for m, v in zip(("ssim", "fsim", "gmsd",
                                                                                        "nrmse"), vals)})
    for line in TABLE2.splitlines():
        model, ts, *vals = line.split()
        ts = ts.replace("(", "").replace(")", "")
        expected.update({("segmentation", names[model], ts, m): float(v) for m, v in zip(("dq", "sq", "pq", "aji"),
                                                                                          vals)})
    got = {(r.kind, r.model, r.train_set, r.metric): r.value for r in ref.itertuples()}
    assert got == expected  # exact, every cell, nothing extra
    directions = dict(zip(ref["metric"], ref["direction"]))
    assert directions == {"ssim": "higher", "fsim": "higher", "gmsd": "lower", "nrmse": "lower", "dq": "higher",
                          "sq": "higher", "pq": "higher", "aji": "higher"}
    assert set(ref.loc[ref.kind == "quality", "source"]) == {"Sharp-GAN, Table 1"}
    assert set(ref.loc[ref.kind == "segmentation", "source"]) == {"Sharp-GAN, Table 2"}
    assert len(load_reference("sharp-gan-table1")) == 12 and len(load_reference("sharp-gan-table2")) == 40


def test_reference_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown reference 'mi-gan'"):
        load_reference("mi-gan")
    bad = tmp_path / "ref.csv"
    bad.write_text("kind,model,train_set,dataset,split,metric,value,direction,source\n"
                   "quality,a,R,d,test,gmsd,0.1,higher,x\n")
    with pytest.raises(DataError, match="gmsd has direction 'higher', expected 'lower'"):
        load_reference(str(bad))


def test_compare_differences_and_direction() -> None:
    recs = fixed_records()
    recs.loc[(recs.model == "sharp-gan") & (recs.metric == "gmsd"), "value"] += 0.010  # worse than the paper
    cmp = compare(recs)
    assert len(cmp) == 12 + 40
    row = cmp[(cmp.model == "sharp-gan") & (cmp.metric == "gmsd")].iloc[0]
    assert row.paper == 0.147 and row.ours == pytest.approx(0.157) and row["diff"] == pytest.approx(0.010)
    assert not row.ours_better  # lower is better
    s10k = cmp[(cmp.model == "segnet") & (cmp.train_set == "S10k") & (cmp.metric == "pq")].iloc[0]
    assert s10k.seeds == 1 and s10k["diff"] == pytest.approx(-0.005) and not s10k.ours_better
    same = cmp[(cmp.model == "unet") & (cmp.train_set == "R") & (cmp.metric == "aji")].iloc[0]
    assert same["diff"] == pytest.approx(0.0, abs=1e-12) and same.seeds == 2
    md = comparison_markdown(cmp)
    assert "0.157 ± 0.002 / 0.147 (+0.010)" in md and "Sharp-GAN, Table 2" in md


def test_compare_and_claims_per_scope_with_extra_keys() -> None:
    """Records of two datasets and two aggregations (extra key, as segmentation/bench.py writes) are
    compared and checked scope by scope, never averaged together."""
    recs = fixed_records()
    seg = recs[recs.kind == "segmentation"]
    pooled = seg.assign(aggregation="pooled", value=seg["value"] - 0.1)
    both = pd.concat([seg.assign(aggregation="mean"), pooled, seg.assign(dataset="cpm17", aggregation="mean")],
                     ignore_index=True)
    cmp = compare(both)
    assert len(cmp) == 3 * 40 and "aggregation" in cmp.columns
    row = cmp[(cmp.model == "unet") & (cmp.train_set == "R") & (cmp.metric == "pq") & (cmp.aggregation == "pooled")]
    assert row["ours"].item() == pytest.approx(0.658 - 0.1) and row["diff"].item() == pytest.approx(-0.1)
    md = comparison_markdown(cmp)
    assert md.count("Sharp-GAN, Table 2") == 3 and "aggregation pooled" in md and "ours on cpm17" in md
    results = check_claims(both)
    assert len(results) == 3 * 8  # segmentation claims only: no quality records in these scopes
    scopes = {r.scope for r in results}
    assert len(scopes) == 3 and any("aggregation pooled" in s for s in scopes)


def _status(results, text: str) -> str:
    (r,) = [r for r in results if r.claim.text == text]
    return r.status


def test_claims_on_the_papers_own_table() -> None:
    """On Table 2 itself, U-Net R+S (10k) does not beat R+S (3k) on SQ and PQ: the claim fails."""
    results = check_claims(reference_records())
    assert [r.status for r in results].count("holds") == 9
    (fail,) = [r for r in results if r.status == "fails"]
    assert fail.claim.text == "U-Net: R+S (10k) beats R+S (3k) on DQ, SQ, PQ and AJI"
    assert fail.failed_metrics == ("sq", "pq")
    assert "SQ 0.797 vs 0.800 (-0.003) ✗" in fail.summary()


def test_claims_on_the_fixed_record_set() -> None:
    results = {r.claim.text: r for r in check_claims(fixed_records())}
    assert len(results) == 10
    # fixture = paper values, except SegNet S (10k): one seed at value - 0.005, so its SQ 0.754 < S (3k) 0.757
    segnet = results.pop("SegNet: S (10k) beats S (3k) on DQ, SQ, PQ and AJI")
    assert segnet.status == "fails" and segnet.failed_metrics == ("sq",)
    unet = results.pop("U-Net: R+S (10k) beats R+S (3k) on DQ, SQ, PQ and AJI")
    assert unet.status == "fails" and unet.failed_metrics == ("sq", "pq")
    assert {r.status for r in results.values()} == {"holds"}


QUALITY_CLAIMS = [("GAN-DIST beats GAN-Binary on SSIM, FSIM, GMSD and NRMSE", "gan-dist", "gan-binary"),
                  ("Sharp-GAN beats GAN-DIST on SSIM, FSIM, GMSD and NRMSE", "sharp-gan", "gan-dist")]


@pytest.mark.parametrize("text, better, worse", QUALITY_CLAIMS)
@pytest.mark.parametrize("metric", ["ssim", "gmsd"])
def test_quality_claims_fail_when_one_metric_loses(text: str, better: str, worse: str, metric: str) -> None:
    values = {m: dict(v) for m, v in QUALITY.items()}
    # make "better" lose on one metric only, in that metric's direction
    values[better][metric] = values[worse][metric] + (-0.01 if metric == "ssim" else 0.01)
    results = check_claims(records_from_dicts(quality_rows(values)))
    (r,) = [r for r in results if r.claim.text == text]
    assert r.status == "fails" and r.failed_metrics == (metric,)
    other = [x for x in QUALITY_CLAIMS if x[0] != text][0][0]
    assert _status(results, other) in ("holds", "fails")


def test_a_tie_does_not_beat() -> None:
    values = {m: dict(v) for m, v in QUALITY.items()}
    values["sharp-gan"]["fsim"] = values["gan-dist"]["fsim"]
    results = check_claims(records_from_dicts(quality_rows(values)))
    assert _status(results, QUALITY_CLAIMS[1][0]) == "fails"


SEG_CASES = [("R+S3k", "R"), ("R+S10k", "R"), ("R+S10k", "R+S3k"), ("S10k", "S3k")]


@pytest.mark.parametrize("arch", ["segnet", "unet"])
@pytest.mark.parametrize("better, worse", SEG_CASES)
def test_segmentation_claims_pass_and_fail(arch: str, better: str, worse: str) -> None:
    # built to pass: every "better" set strictly above every "worse" set on all metrics
    level = {"R": 0.60, "S3k": 0.50, "R+S3k": 0.65, "S10k": 0.55, "R+S10k": 0.70}
    values = {(a, t): (v, v, v, v) for a in ("segnet", "unet") for t, v in level.items()}
    name = {"segnet": "SegNet", "unet": "U-Net"}[arch]
    from reports.tables import display_name

    text = f"{name}: {display_name(better)} beats {display_name(worse)} on DQ, SQ, PQ and AJI"
    assert _status(check_claims(records_from_dicts(segmentation_rows(values))), text) == "holds"
    # built to fail on AJI only
    b = list(values[(arch, better)])
    b[3] = values[(arch, worse)][3] - 0.01
    values[(arch, better)] = tuple(b)
    results = check_claims(records_from_dicts(segmentation_rows(values)))
    (r,) = [r for r in results if r.claim.text == text]
    assert r.status == "fails" and r.failed_metrics == ("aji",)
    # PQ-only variant ignores AJI and holds
    pq_only = check_claims(records_from_dicts(segmentation_rows(values)), seg_metrics=("pq",))
    assert _status(pq_only, f"{name}: {display_name(better)} beats {display_name(worse)} on PQ") == "holds"


def test_untested_when_records_are_missing() -> None:
    recs = fixed_records()
    recs = recs[~((recs.model == "unet") & (recs.train_set == "S10k"))]
    results = check_claims(recs)
    (r,) = [r for r in results if r.claim.text.startswith("U-Net: S (10k)")]
    assert r.status == "untested" and r.reason == "no records of U-Net S (10k)"
    md = claims_markdown(results)
    assert "untested" in md and "2 fails" in md and "7 holds" in md and "1 untested" in md


def test_claims_are_checked_per_dataset() -> None:
    recs = fixed_records()
    other = recs.copy()
    other["dataset"] = "cpm17"
    other.loc[(other.model == "sharp-gan") & (other.metric == "ssim"), "value"] = 0.1
    results = check_claims(pd.concat([recs, other], ignore_index=True))
    assert len(results) == 20
    sharp = [r for r in results if r.claim.text == QUALITY_CLAIMS[1][0]]
    assert [r.status for r in sharp] == ["holds", "fails"]
    assert "dataset synthetic-he" in sharp[0].scope and "dataset cpm17" in sharp[1].scope
    assert len(sharp_gan_claims(archs=("unet",))) == 6


def test_quality_claims_kept_when_quality_rows_lack_an_extra_key() -> None:
    """pd.concat of quality records (no ``aggregation`` column) with segmentation records leaves
    NaN in the quality rows' key: their claims must still be checked, not dropped by groupby."""
    recs = fixed_records()
    q = recs[recs.kind == "quality"]
    seg = recs[recs.kind == "segmentation"].assign(aggregation="mean")
    both = pd.concat([q, seg], ignore_index=True)
    assert both.loc[both.kind == "quality", "aggregation"].isna().all()
    texts = [r.claim.text for r in check_claims(both)]
    assert sum("GAN-DIST beats GAN-Binary" in t or "Sharp-GAN beats GAN-DIST" in t for t in texts) == 2
    assert len(texts) == 2 + 8
