"""The Sharp-GAN paper's claims, in its own words, checked with paired tests on our results.

A claim compares two experiments ``a`` and ``b`` (kind, model, training set) on a few metrics,
paired on the same test images (:func:`gbench.core.stats.compare_experiments`: per metric the
difference ``a - b``, its 95% paired-bootstrap CI and a p-value, Holm-corrected across the
claim's metrics). Verdicts:

``supported``
    superiority: on every metric ``a`` is better, significant after Holm (p < alpha) **and**
    the CI of the difference excludes 0. Non-inferiority: on every metric the CI's worse end
    lies above ``-margin`` (in the metric's better direction).
``contradicted``
    superiority: ``a`` is significantly worse on some metric (Holm p < alpha, CI entirely on
    the worse side). Non-inferiority: on some metric the whole CI lies below ``-margin``.
``not significant``
    anything else (the direction may be right, but some CI includes 0 / the margin). The
    evidence then gives a rough number of test units that would detect the observed effect at
    80% power (:func:`gbench.core.stats.units_for_power`: normal approximation on the per-unit
    paired differences, Holm's worst case ``alpha / m``), so a reader sees whether more tiles
    (or seeds) would settle it.
``undecidable: N test units (smallest possible p = X)``
    the design cannot reach ``alpha`` whatever the data: with ``N`` paired units the exact
    sign-flip distribution has ``2**N`` patterns, so p >= 2/2**N two-sided (1/2**N one-sided,
    non-inferiority), times ``m`` after Holm over the claim's ``m`` metrics
    (:func:`gbench.core.stats.smallest_p`). Checked before the numbers are read: it replaces
    ``supported``, ``contradicted`` and ``not significant`` alike (CPM-15's 5 test tiles: 2/32 =
    0.0625 > 0.05 even for one metric). More test tiles decide; more seeds do not (every seed
    is scored on the same tiles).
``untested``
    with the reason: ``failed run`` (a side is marked failed), ``below the floor (<cell>)`` (a
    segmentation side does not significantly beat the floor segmenter, see below), ``no
    per-image data`` (no observations to test with), ``no records of ...``, or why the two sides
    are not comparable (different test sets or images).

The floor (segmentation claims): before a segmentation claim is tested, each of its sides is
tested against the floor segmenter of the same scope (``hed-watershed``, no training:
:mod:`gbench.segmentation.floor`) on PQ with the claim's own paired test and alpha (a one-metric
comparison, :func:`gbench.core.stats.metric_verdict`). A side that is not ``better`` than the
floor learned nothing a threshold could not do: the claim is ``untested: below the floor
(<cell>)`` and is never evidence, as superiority or as non-inferiority (two models that learned
nothing are not "non-inferior" to each other). Without floor observations in the scope the check
is skipped. The hard checks of :mod:`gbench.metrics.failures` (no foreground, one component)
still mark runs ``failed`` first.

Intervals: below :data:`gbench.core.stats.T_INTERVAL_BELOW` units a CI is a t-interval on the
per-unit paired differences (a bootstrap over a few units undercovers; the simulation is in
``tests/core/test_verdicts.py``), else the paired bootstrap.

Probability of improvement: with several training seeds on a side, every metric also gets
P(a > b) (rliable's definition: per test unit, the share of seed pairs where ``a``'s unit score
beats ``b``'s, ties 1/2, averaged over units) with a stratified bootstrap CI over seeds and units
(:func:`gbench.core.stats.probability_of_improvement`).

A verdict never rests on two means. Beside ours, every claim shows the paper's own outcome
**by means** (its tables give means only): ``holds by means`` / ``fails by means (SQ, PQ)``,
and for the quality claims the percentage gains the paper quotes beside ours (gain convention
that reproduces the paper's 18.0 / 3.8 / 9.2 / 18.1 % from Table 1: ``(a - b) / b`` for a
higher-is-better metric, ``(b - a) / a`` for a lower-is-better one).

Claims (Sharp-GAN, Sec. 3.2 and 3.3), per segmentation architecture where it applies:

1. GAN-DIST beats GAN-Binary on SSIM, FSIM, GMSD, NRMSE (Sec. 3.2, Table 1).
2. Sharp-GAN beats GAN-DIST on the same four (Sec. 3.2, Table 1).
3. R+S (3k) beats R, and R+S (10k) beats R, on DQ, SQ, PQ, AJI (Sec. 3.3).
4. R+S (10k) beats R+S (3k) (Sec. 3.3; the text names no metric: the four of Table 2). On
   Table 2 itself this fails by means for U-Net (SQ 0.797 < 0.800, PQ 0.669 < 0.671).
5. S (3k) "only slightly worse" than R: non-inferiority with ``margin`` (default 0.05
   absolute; the paper does not quantify "slightly"). By means, Table 2 itself fails it at 0.05.
6. U-Net S (10k) "comparable" to R+S (10k) (Sec. 3.3, Fig. 5 shows U-Net examples):
   non-inferiority with ``margin``.
7. S (10k) beats S (3k): from Table 2, not stated in the text.
"""
from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pandas as pd
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gbench.core import stats
from gbench.core.metric_specs import higher_is_better, metric_label, metric_names
from gbench.core.observations import FLOOR_SEGMENTER, FLOOR_TRAIN_SET
from gbench.core.records import scope_columns
from gbench.reports.compare import load_reference
from gbench.reports.tables import display_name

__all__ = ["Claim", "ClaimResult", "ByMeans", "QUALITY_METRICS", "SEG_METRICS", "DEFAULT_MARGIN", "VERDICTS",
           "sharp_gan_claims", "contender_claims", "contenders_in", "PAPER_GENERATORS", "check_claim", "check_claims", "below_floor", "FLOOR_METRIC", "by_means", "paper_outcome", "gain_percent",
           "claims_frame", "claims_detail_frame", "claims_markdown", "claims_html", "claims_rich"]

QUALITY_METRICS: tuple[str, ...] = metric_names("quality", paper=True)
SEG_METRICS: tuple[str, ...] = metric_names("instance", paper=True)
DEFAULT_MARGIN = 0.05
VERDICTS: tuple[str, ...] = ("supported", "not significant", "undecidable", "contradicted", "untested")
#: The metric a segmentation side must significantly beat the floor segmenter on.
FLOOR_METRIC = "pq"
#: Set statistics: a claim on them is tested on their bootstrap replicates (``replicates.csv``).
SET_METRICS: tuple[str, ...] = metric_names("distribution")
Test = Literal["superiority", "non-inferiority"]

_Q_SECTION = "Sec. 3.2, Table 1"
_S_SECTION = "Sec. 3.3, Table 2"
_QUOTES = {
    "dist>binary": ("We note that GAN-DIST outperforms GAN-Binary in all metrics, i.e., the SSIM, FSIM, GMSD, "
                    "NRMSE results improved 18.0%, 3.8%, 9.2%, 18.1%, respectively."),
    "sharp>dist": ("Sharp-GAN outperformes the GAN-DIST in all four metrics. SSIM, FSIM, GMSD, NRMSE of Sharp-GAN "
                   "are 11.2%, 3.9%, 10.8%, 11.1% higher than those of the GAN-DIST, respectively."),
    "R+S>R": ("While we train the models using a combination of synthetic data and real data, their results of "
              "the four metrics are all higher than those of the models trained using only real images."),
    "R+S10k>R+S3k": ("Table 2 shows that the segmentation models trained using 10k synthetic images and real "
                     "images outperform the models training using a combinations of 3k synthetic images and real "
                     "images."),
    "S3k~R": ("the results of both U-Net and SegNet trained using 3k synthetic images are only slightly worse "
              "than the results of models trained using real data."),
    "S~R+S": ("They show that the model trained using only synthetic images is comparable to the model trained "
              "using both synthetic and real images."),
}


@dataclass(frozen=True)
class Claim:
    """"``a`` beats ``b`` on ``metrics``" (or "``a`` is at most ``margin`` worse than ``b``").

    Attributes:
        id: Short stable name (``dist>binary``, ``unet:R+S3k>R`` ...).
        text: Our statement of the claim.
        quote: The paper's words ("" for a claim the text does not make).
        section: Where the paper makes it.
        kind: ``quality`` or ``segmentation``.
        a, b: (model, train_set) of the claimed-better (or not-worse) side and the other.
        metrics: Metrics, all of which must agree.
        test: ``superiority`` or ``non-inferiority``.
        margin: Non-inferiority margin (absolute), None for superiority.
        paper_gains: Percentage gains the paper quotes, one per metric, or None.
        note: Caveat shown with the claim (e.g. "from Table 2, not stated in the text").
    """

    id: str
    text: str
    quote: str
    section: str
    kind: str
    a: tuple[str, str]
    b: tuple[str, str]
    metrics: tuple[str, ...]
    test: Test = "superiority"
    margin: float | None = None
    paper_gains: tuple[float, ...] | None = None
    note: str = ""
    source: str = "Sharp-GAN"
    optional: bool = False  # shown only when both sides have records (contender_claims)

    @property
    def better(self) -> tuple[str, str]:  # old name of ``a``
        return self.a

    @property
    def worse(self) -> tuple[str, str]:  # old name of ``b``
        return self.b


@dataclass(frozen=True)
class ByMeans:
    """A claim read on means only (the paper's tables; our records without observations)."""

    holds: bool
    failed_metrics: tuple[str, ...]
    a: tuple[float, ...]
    b: tuple[float, ...]

    def text(self) -> str:
        if self.holds:
            return "holds by means"
        return "fails by means (" + ", ".join(metric_label(m) for m in self.failed_metrics) + ")"


@dataclass(frozen=True)
class ClaimResult:
    """One claim checked in one scope (dataset, profile, split, aggregation ...)."""

    claim: Claim
    verdict: str
    reason: str = ""
    scope: str = ""
    differences: tuple[Any, ...] = ()  # gbench.core.stats.Difference per metric
    metric_verdicts: tuple[str, ...] = ()
    ours_by_means: ByMeans | None = None
    paper: ByMeans | None = None
    alpha: float = 0.05
    n_seeds: tuple[int, int] = field(default=(0, 0))
    units_needed: float = math.nan  # rough test units for 80% power (not significant claims)
    improvements: tuple[Any, ...] = ()  # gbench.core.stats.Improvement per metric (several seeds)

    @property
    def status(self) -> str:
        """The verdict with its reason: ``untested: failed run (...)``, ``undecidable: 4 test units (...)``."""
        if self.verdict in ("untested", "undecidable") and self.reason:
            return f"{self.verdict}: {self.reason}"
        return self.verdict

    def ours_gains(self) -> tuple[float, ...] | None:
        """Our percentage gains per metric (from the paired differences' sides, else our means)."""
        if self.differences:
            return tuple(gain_percent(d.metric, d.a, d.b) for d in self.differences)
        if self.ours_by_means is not None:
            return tuple(gain_percent(m, a, b) for m, a, b in zip(self.claim.metrics, self.ours_by_means.a,
                                                                   self.ours_by_means.b))
        return None

    def evidence(self, precision: int = 3) -> str:
        """One line: per metric the difference a - b, its CI and the Holm p (our gain beside the paper's)."""
        if not self.differences:
            out = self.reason
            if self.ours_by_means is not None:
                out += f"; ours {self.ours_by_means.text()}"
            return out
        gains = self.ours_gains() if self.claim.paper_gains else None
        parts = []
        for i, (d, v) in enumerate(zip(self.differences, self.metric_verdicts)):
            text = (f"{metric_label(d.metric)} {d.diff:+.{precision}f} [{d.ci_low:+.{precision}f}, "
                    f"{d.ci_high:+.{precision}f}] p={_p(d.p_adjusted)}")
            if gains is not None and self.claim.paper_gains is not None:
                text += f" ({gains[i]:+.1f}% vs paper {self.claim.paper_gains[i]:.1f}%)"
            if v not in ("better", "non-inferior"):
                text += f" {_MARK.get(v, '')}".rstrip()
            if self.improvements:
                pi = self.improvements[i]
                text += f" P(a>b) {pi.value:.2f} [{pi.ci_low:.2f}, {pi.ci_high:.2f}]"
            parts.append(text)
        if self.verdict == "undecidable" and self.reason:
            parts.append(f"undecidable: {self.reason}")
        if self.verdict == "not significant" and not math.isnan(self.units_needed):
            n = "more than 10^6" if math.isinf(self.units_needed) or self.units_needed > 1e6 \
                else f"~{int(self.units_needed)}"
            parts.append(f"{n} test units for 80% power (normal approximation on the per-unit paired differences)")
        return "; ".join(parts)

    def paper_text(self) -> str:
        return self.paper.text() if self.paper is not None else "not in the paper's tables"


_MARK = {"worse": "✗", "inferior": "✗", "not significant": "(n.s.)", "inconclusive": "(n.s.)",
         "undecidable": "(undecidable)"}


def _p(p: float) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def gain_percent(metric: str, a: float, b: float) -> float:
    """The paper's gain of ``a`` over ``b`` in percent: ``(a-b)/b`` (higher is better), ``(b-a)/a`` (lower)."""
    if higher_is_better(metric):
        return 100.0 * (a - b) / b if b else math.nan
    return 100.0 * (b - a) / a if a else math.nan


def _names(metrics: Sequence[str]) -> str:
    labels = [metric_label(m) for m in metrics]
    return ", ".join(labels[:-1]) + f" and {labels[-1]}" if len(labels) > 1 else labels[0]


def sharp_gan_claims(archs: Sequence[str] = ("segnet", "unet"), binary: str = "gan-binary",
                     dist: str = "gan-dist", sharp: str = "sharp-gan", seg_metrics: Sequence[str] = SEG_METRICS,
                     margin: float = DEFAULT_MARGIN) -> list[Claim]:
    """The paper's claims for the given segmentation archs and generator names."""
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a non-negative number, got {margin}")
    seg = tuple(seg_metrics)
    q = _names(QUALITY_METRICS)
    claims = [
        Claim("dist>binary", f"{display_name(dist)} beats {display_name(binary)} on {q}", _QUOTES["dist>binary"],
              _Q_SECTION, "quality", (dist, "R"), (binary, "R"), QUALITY_METRICS,
              paper_gains=(18.0, 3.8, 9.2, 18.1)),
        Claim("sharp>dist", f"{display_name(sharp)} beats {display_name(dist)} on {q}", _QUOTES["sharp>dist"],
              _Q_SECTION, "quality", (sharp, "R"), (dist, "R"), QUALITY_METRICS,
              paper_gains=(11.2, 3.9, 10.8, 11.1)),
    ]
    names = _names(seg)
    for arch in archs:
        an = display_name(arch)

        def sup(cid: str, a: str, b: str, quote: str, section: str = _S_SECTION, note: str = "") -> Claim:
            return Claim(f"{arch}:{cid}", f"{an}: {display_name(a)} beats {display_name(b)} on {names}", quote,
                         section, "segmentation", (arch, a), (arch, b), seg, note=note)

        def noninf(cid: str, a: str, b: str, quote: str, section: str, note: str) -> Claim:
            return Claim(f"{arch}:{cid}", f"{an}: {display_name(a)} at most {margin:g} worse than {display_name(b)} "
                         f"on {names}", quote, section, "segmentation", (arch, a), (arch, b), seg,
                         test="non-inferiority", margin=margin, note=note)

        claims += [
            sup("R+S3k>R", "R+S3k", "R", _QUOTES["R+S>R"]),
            sup("R+S10k>R", "R+S10k", "R", _QUOTES["R+S>R"]),
            sup("R+S10k>R+S3k", "R+S10k", "R+S3k", _QUOTES["R+S10k>R+S3k"],
                note="the text names no metric: held to the four of Table 2"),
            noninf("S3k~R", "S3k", "R", _QUOTES["S3k~R"], _S_SECTION,
                   f"'slightly worse' is not quantified: non-inferiority margin {margin:g} (absolute)"),
        ]
        if arch == "unet":
            claims.append(noninf("S10k~R+S10k", "S10k", "R+S10k", _QUOTES["S~R+S"], "Sec. 3.3, Fig. 5",
                                 f"Fig. 5 shows four U-Net examples; 'comparable' read as non-inferiority, "
                                 f"margin {margin:g} (absolute)"))
        claims.append(sup("S10k>S3k", "S10k", "S3k", "", "Table 2", note="from Table 2, not stated in the text"))
    return claims


#: The generators of the paper's Table 1 (and the floor): every other generator in the records is
#: a contender (:func:`contender_claims`).
PAPER_GENERATORS: tuple[str, ...] = ("gan-binary", "gan-dist", "sharp-gan", "mask-paint")
#: The twin of a paper training set drawn by another generator (``gbench reproduce``): ``R+S3k-ddpm``.
_TWIN = re.compile(r"^(?:R\+)?S(?:3|10)k-(?P<gen>[a-z][a-z0-9-]*)$")


def contenders_in(records: pd.DataFrame, paper: Sequence[str] = PAPER_GENERATORS) -> list[str]:
    """Generators beyond the paper's in the records: quality rows of another model, and training sets
    ``[R+]S3k-<generator>`` / ``[R+]S10k-<generator>`` (the twins ``gbench reproduce`` trains on)."""
    found = [str(m) for m in records.loc[records["kind"] == "quality", "model"]]
    found += [m.group("gen") for t in records.loc[records["kind"] == "segmentation", "train_set"].astype(str)
              if (m := _TWIN.match(t))]
    return [g for g in dict.fromkeys(found) if g not in paper]


def contender_claims(contenders: Sequence[str], archs: Sequence[str] = ("segnet", "unet"),
                     sharp: str = "sharp-gan", seg_metrics: Sequence[str] = SEG_METRICS) -> list[Claim]:
    """Optional claims for generators beyond the paper's (``ddpm``): ``X beats Sharp-GAN`` on the
    Table 1 metrics, and per arch ``R+S (3k) of X beats R+S (3k)`` (and 10k) on the Table 2 metrics,
    where X's twin set is ``R+S3k-X``. Not the paper's claims: each is listed only when both of
    its sides have records (:func:`check_claims` drops it otherwise)."""
    seg = tuple(seg_metrics)
    note = "not a claim of the paper: shown because both sides were run"
    out: list[Claim] = []
    for x in contenders:
        out.append(Claim(f"{x}>sharp", f"{display_name(x)} beats {display_name(sharp)} on {_names(QUALITY_METRICS)}",
                         "", "Table 1", "quality", (x, "R"), (sharp, "R"), QUALITY_METRICS, note=note,
                         source="gbench", optional=True))
        for arch in archs:
            for t in ("R+S3k", "R+S10k"):
                out.append(Claim(f"{arch}:{t}-{x}>{t}", f"{display_name(arch)}: {t}-{x} beats {display_name(t)} "
                                 f"({display_name(sharp)}) on {_names(seg)}", "", "Table 2", "segmentation",
                                 (arch, f"{t}-{x}"), (arch, t), seg, note=note, source="gbench", optional=True))
    return out


# ------------------------------------------------------------------------------------ by means

def by_means(claim: Claim, values: Mapping[tuple[str, str, str], float]) -> ByMeans | None:
    """The claim read on means: ``values[(model, train_set, metric)]``; None when a value is missing."""
    a, b = [], []
    for m in claim.metrics:
        va, vb = values.get((*claim.a, m)), values.get((*claim.b, m))
        if va is None or vb is None or math.isnan(va) or math.isnan(vb):
            return None
        a.append(float(va))
        b.append(float(vb))
    failed = []
    for m, va, vb in zip(claim.metrics, a, b):
        d = (va - vb) if higher_is_better(m) else (vb - va)
        ok = d > -(claim.margin or 0.0) if claim.test == "non-inferiority" else d > 0
        if not ok:
            failed.append(m)
    return ByMeans(not failed, tuple(failed), tuple(a), tuple(b))


def _means(records: pd.DataFrame, kind: str) -> dict[tuple[str, str, str], float]:
    sub = records[(records["kind"] == kind)]
    if "status" in sub.columns:
        sub = sub[sub["status"] != "failed"]
    if sub.empty:
        return {}
    g = sub.groupby(["model", "train_set", "metric"], sort=False)["value"].mean()
    return {k: float(v) for k, v in g.items()}


def paper_outcome(claim: Claim, reference: pd.DataFrame | str | None = "sharp-gan") -> ByMeans | None:
    """The paper's own outcome of a claim, by means, from its reference tables."""
    if reference is None:
        return None
    if isinstance(reference, str):
        reference = load_reference(reference)
    return by_means(claim, _means(reference, claim.kind))


# ---------------------------------------------------------------------------------- checking

def _side_label(side: tuple[str, str], kind: str) -> str:
    model, train_set = side
    return display_name(model) + (f" {display_name(train_set)}" if kind == "segmentation" else "")


def _failure(rows: pd.DataFrame) -> str:
    if rows is None or rows.empty or "status" not in rows.columns:
        return ""
    bad = rows[rows["status"] == "failed"]
    if bad.empty:
        return ""
    seeds = sorted({int(s) for s in bad["seed"]}) if "seed" in bad.columns else []
    why = str(bad["failure"].iloc[0]) if "failure" in bad.columns else ""
    where = ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds)) if seeds else ""
    return ": ".join(x for x in (where, why) if x)


def _select(df: pd.DataFrame | None, kind: str, side: tuple[str, str]) -> pd.DataFrame | None:
    if df is None:
        return None
    return df[(df["kind"] == kind) & (df["model"] == side[0]) & (df["train_set"] == side[1])]


def check_claim(claim: Claim, records: pd.DataFrame, scope: str = "", observations: pd.DataFrame | None = None, *,
                aggregation: str = "mean", alpha: float = 0.05, test: str = "permutation",
                n_resamples: int = 2000, seed: int = 0,
                reference: pd.DataFrame | str | None = "sharp-gan",
                replicates: pd.DataFrame | None = None) -> ClaimResult:
    """Check one claim on the records and observations of one scope.

    Args:
        claim: The claim.
        records: Our records of the scope (for the means and the failed flags).
        scope: Text naming the scope (shown with the result).
        observations: Per-image observations of the scope (None: every claim is untested).
        aggregation: ``mean`` or ``pooled`` (segmentation metrics; quality is always mean).
        alpha: Level of the Holm-corrected tests.
        test: p-value test of :func:`gbench.core.stats.paired_difference`.
        n_resamples, seed: Bootstrap / permutation settings (seeded).
        reference: The paper's table (name or DataFrame) for its by-means outcome, or None.
        replicates: Bootstrap replicates of set statistics (:func:`gbench.core.observations.load_replicates`)
            for a claim on FID, KID, precision/recall or density/coverage (paired on the shared real
            resample, :func:`gbench.core.stats.set_difference`; Holm together with the claim's other
            metrics).
    """

    paper = paper_outcome(claim, reference)

    ours = by_means(claim, _means(records, claim.kind)) if records is not None and not records.empty else None
    base = {"scope": scope, "paper": paper, "ours_by_means": ours, "alpha": alpha}
    ra, rb = _select(records, claim.kind, claim.a), _select(records, claim.kind, claim.b)
    oa, ob = _select(observations, claim.kind, claim.a), _select(observations, claim.kind, claim.b)
    # the seeds of the records (a report filtered to --seed 0 tests seed 0 only)
    if oa is not None and ra is not None and not ra.empty:
        oa = oa[oa["seed"].isin(set(ra["seed"]))]
    if ob is not None and rb is not None and not rb.empty:
        ob = ob[ob["seed"].isin(set(rb["seed"]))]
    missing = [claim.a if i == 0 else claim.b for i, (r, o) in enumerate(((ra, oa), (rb, ob)))
               if (r is None or r.empty) and (o is None or o.empty)]
    if missing:
        return ClaimResult(claim, "untested", "no records of " + " and ".join(_side_label(s, claim.kind)
                                                                               for s in missing), **base)
    for side, r, o in ((claim.a, ra, oa), (claim.b, rb, ob)):
        why = _failure(r) or _failure(o)
        if why:
            # no reading by means either: the surviving seeds alone would flatter the failed side
            return ClaimResult(claim, "untested", f"failed run ({_side_label(side, claim.kind)} {why})",
                               **{**base, "ours_by_means": None})
    if oa is None or ob is None or oa.empty or ob.empty:
        return ClaimResult(claim, "untested", "no per-image data", **base)
    if claim.kind == "segmentation":
        below = below_floor(claim, oa, ob, observations, aggregation=aggregation, alpha=alpha, test=test,
                            n_resamples=n_resamples, seed=seed)
        if below:
            return ClaimResult(claim, "untested", f"below the floor ({', '.join(below)})", **base)
    try:
        diffs = _differences(claim, oa, ob, replicates, aggregation if claim.kind == "segmentation" else "mean",
                             test=test, alpha=alpha, n_resamples=n_resamples, seed=seed)
    except stats.FailedRun as exc:
        return ClaimResult(claim, "untested", f"failed run ({exc})", **base)
    except ValueError as exc:  # NotComparable and friends: the one-line reason
        return ClaimResult(claim, "untested", str(exc), **base)
    verdicts = tuple(stats.metric_verdict(d, alpha) for d in diffs)
    if claim.test == "non-inferiority":
        verdict = ("supported" if all(v == "non-inferior" for v in verdicts)
                   else "contradicted" if "inferior" in verdicts else "not significant")
    else:
        verdict = ("supported" if all(v == "better" for v in verdicts)
                   else "contradicted" if "worse" in verdicts else "not significant")
    base_reason = ""
    if "undecidable" in verdicts:
        verdict = "undecidable"
        base_reason = (f"{diffs[0].n_units} test units (smallest possible p = {diffs[0].min_p_adjusted:.3g}"
                       + (f", Holm over {len(diffs)} metrics" if len(diffs) > 1 else "") + ")")
    elif "untested" in verdicts:
        verdict = "untested"
        base_reason = "too few test images for an interval"
    needed = math.nan
    if verdict == "not significant":
        open_ = [stats.units_for_power(d, alpha, len(diffs)) for d, v in zip(diffs, verdicts)
                 if v not in ("better", "non-inferior")]
        open_ = [x for x in open_ if not math.isnan(x)]
        needed = max(open_) if open_ else math.nan
    n = (int(oa["seed"].nunique()), int(ob["seed"].nunique()))
    improvements: tuple[Any, ...] = ()
    if max(n) > 1:
        agg = aggregation if claim.kind == "segmentation" else "mean"
        try:
            improvements = tuple(stats.probability_of_improvement(
                [(oa, ob)], m, agg if m in stats.POOLED_METRICS else "mean", n_resamples=n_resamples, seed=seed)
                for m in claim.metrics)
        except ValueError:
            improvements = ()
    return ClaimResult(claim, verdict, base_reason, differences=tuple(diffs), metric_verdicts=verdicts,
                       n_seeds=n, units_needed=needed, improvements=improvements, **base)


def _differences(claim: Claim, oa: pd.DataFrame, ob: pd.DataFrame, replicates: pd.DataFrame | None,
                 aggregation: str, **options: Any) -> list[Any]:
    """Per-image metrics by :func:`gbench.core.stats.compare_experiments`, set statistics (FID, KID, ...)
    by :func:`gbench.core.stats.set_difference` on their bootstrap replicates; Holm over all of them."""
    sets = [m for m in claim.metrics if m in SET_METRICS and not (m in oa.columns and oa[m].notna().all())]
    per_image = [m for m in claim.metrics if m not in sets]
    options = dict(options)
    alpha = options.pop("alpha")
    diffs = {d.metric: d for d in stats.compare_experiments(oa, ob, per_image, aggregation, margin=claim.margin,
                                                             alpha=alpha, **options)} if per_image else {}
    if sets:
        ra, rb = _select(replicates, claim.kind, claim.a), _select(replicates, claim.kind, claim.b)
        if ra is None or rb is None or ra.empty or rb.empty:
            raise ValueError(f"no bootstrap replicates of {', '.join(sets)} (set statistics; written by gbench "
                             "quality --extractor)")
        for m in sets:
            diffs[m] = stats.set_difference(stats.set_replicates(ra, m), stats.set_replicates(rb, m),
                                            margin=claim.margin)
    ordered = [diffs[m] for m in claim.metrics]
    adjusted = stats.holm([d.p for d in ordered])
    k = len(ordered)
    return [replace(d, p_adjusted=float(q), min_p_adjusted=float(min(1.0, k * d.min_p)))
            for d, q in zip(ordered, adjusted)]


def below_floor(claim: Claim, obs_a: pd.DataFrame, obs_b: pd.DataFrame, observations: pd.DataFrame | None, *,
                aggregation: str = "mean", alpha: float = 0.05, test: str = "permutation", n_resamples: int = 2000,
                seed: int = 0) -> list[str]:
    """The sides of a segmentation claim that do not significantly beat the floor segmenter on PQ.

    Each side's observations are compared with the floor's of the same scope
    (:data:`gbench.core.observations.FLOOR_SEGMENTER`) by :func:`gbench.core.stats.compare_experiments`
    on :data:`FLOOR_METRIC` with the claim's test; a side whose verdict is not ``better`` is named
    (``U-Net S (10k)``). Empty when the scope has no floor observations or both sides beat it.
    """
    floor = _select(observations, "segmentation", (FLOOR_SEGMENTER, FLOOR_TRAIN_SET))
    if floor is None or floor.empty:
        return []
    out = []
    for side, o in ((claim.a, obs_a), (claim.b, obs_b)):
        if side == (FLOOR_SEGMENTER, FLOOR_TRAIN_SET):
            continue
        try:
            (d,) = stats.compare_experiments(o, floor, [FLOOR_METRIC], aggregation, test=test, alpha=alpha,
                                             n_resamples=n_resamples, seed=seed)
        except ValueError:  # not comparable with the floor (other test images): no floor check
            continue
        if stats.metric_verdict(d, alpha) != "better":
            out.append(_side_label(side, claim.kind))
    return out


def _obs_scope(observations: pd.DataFrame | None, scopes: Sequence[str], key: Sequence[str]) -> pd.DataFrame | None:
    if observations is None:
        return None
    sub = observations
    for c, v in zip(scopes, key):
        if c in sub.columns:
            sub = sub[sub[c].astype(str) == str(v)]
    return sub


def check_claims(records: pd.DataFrame, claims: Sequence[Claim] | None = None,
                 observations: pd.DataFrame | None = None, *, margin: float = DEFAULT_MARGIN, alpha: float = 0.05,
                 test: str = "permutation", n_resamples: int = 2000, seed: int = 0,
                 reference: pd.DataFrame | str | None = "sharp-gan", replicates: pd.DataFrame | None = None,
                 **claim_options: Any) -> list[ClaimResult]:
    """Check claims on every scope of the records (dataset x profile x split x extra keys such as
    ``aggregation``; see :func:`gbench.core.records.scope_columns`).

    With several scopes, a scope is only checked for the claims of the kinds it holds; with
    one scope every claim is listed, untested where records are missing.

    Args:
        records: Our records (any kinds; claims pick what they need).
        claims: Claims to check; default :func:`sharp_gan_claims` over the archs present.
        observations: Per-image observations of the records (:func:`gbench.core.observations.
            load_observations`); None leaves every claim ``untested: no per-image data``.
        margin: Non-inferiority margin of the "slightly worse" / "comparable" claims.
        alpha, test, n_resamples, seed: See :func:`check_claim`.
        reference: Paper table for the by-means outcome (None: not shown).
        **claim_options: Passed to :func:`sharp_gan_claims` (``seg_metrics``, generator names).
    """
    if isinstance(reference, str):
        reference = load_reference(reference)
    scopes = scope_columns(records)
    results: list[ClaimResult] = []
    if records.empty or not scopes:
        groups: list[tuple[tuple[str, ...], pd.DataFrame]] = [((), records)]
    else:
        filled = records.fillna({c: "" for c in scopes})
        groups = [(k if isinstance(k, tuple) else (k,), g) for k, g in filled.groupby(scopes, sort=False)]
    for key, sub in groups:
        if claims is None:
            archs = [a for a in dict.fromkeys(sub.loc[sub["kind"] == "segmentation", "model"])
                     if a != FLOOR_SEGMENTER] or ["segnet", "unet"]
            todo = sharp_gan_claims(archs=archs, margin=margin, **claim_options)
            own = tuple(v for k, v in claim_options.items() if k in ("binary", "dist", "sharp"))
            todo += contender_claims(contenders_in(records, (*PAPER_GENERATORS, *own)), archs,
                                     sharp=claim_options.get("sharp", "sharp-gan"),
                                     seg_metrics=claim_options.get("seg_metrics", SEG_METRICS))
        else:
            todo = list(claims)
        kinds = set(sub["kind"]) if len(groups) > 1 else {c.kind for c in todo}
        scope = ", ".join(f"{c} {v}" for c, v in zip(scopes, key) if v != "")
        agg = dict(zip(scopes, key)).get("aggregation", "") or "mean"
        obs = _obs_scope(observations, scopes, key)
        reps = _obs_scope(replicates, scopes, key)
        results += [check_claim(c, sub, scope, obs, aggregation=agg, alpha=alpha, test=test,
                                n_resamples=n_resamples, seed=seed, reference=reference, replicates=reps)
                    for c in todo if c.kind in kinds]
    # an optional claim (contender_claims) is listed only where both of its sides were run
    results = [r for r in results if not (r.claim.optional and r.verdict == "untested"
                                          and r.reason.startswith("no records of"))]
    return results


# --------------------------------------------------------------------------------- rendering

def _claim_cell(r: ClaimResult) -> str:
    c = r.claim
    out = c.text
    if c.note:
        out += f" [{c.note}]"
    return out


def claims_frame(results: Sequence[ClaimResult], precision: int = 3) -> pd.DataFrame:
    """One row per claim and scope: scope, id, claim, verdict, evidence, paper (by means), section, quote, note."""
    cols = ["scope", "id", "claim", "verdict", "evidence", "paper", "section", "quote", "note"]
    return pd.DataFrame([{"scope": r.scope, "id": r.claim.id, "claim": r.claim.text, "verdict": r.status,
                          "evidence": r.evidence(precision), "paper": r.paper_text(), "section": r.claim.section,
                          "quote": r.claim.quote, "note": r.claim.note} for r in results], columns=cols)


def claims_detail_frame(results: Sequence[ClaimResult]) -> pd.DataFrame:
    """One row per claim, scope and metric, full precision: both sides, the difference, its CI,
    p and Holm p, the test, the metric's verdict, the claim's verdict, the paper's means."""
    rows = []
    for r in results:
        for i, m in enumerate(r.claim.metrics):
            d = r.differences[i] if r.differences else None
            row = {"scope": r.scope, "id": r.claim.id, "claim": r.claim.text, "metric": m,
                   "a": f"{r.claim.a[0]} {r.claim.a[1]}", "b": f"{r.claim.b[0]} {r.claim.b[1]}",
                   "ours_a": d.a if d else (r.ours_by_means.a[i] if r.ours_by_means else math.nan),
                   "ours_b": d.b if d else (r.ours_by_means.b[i] if r.ours_by_means else math.nan),
                   "diff": d.diff if d else math.nan, "ci_low": d.ci_low if d else math.nan,
                   "ci_high": d.ci_high if d else math.nan, "p": d.p if d else math.nan,
                   "p_holm": d.p_adjusted if d else math.nan, "test": d.test if d else "",
                   "ci_method": d.method if d else "", "margin": r.claim.margin,
                   "metric_verdict": r.metric_verdicts[i] if r.metric_verdicts else "",
                   "verdict": r.status, "min_p_holm": d.min_p_adjusted if d else math.nan,
                   "n_units": d.n_units if d else math.nan,
                   "units_for_80pct_power": r.units_needed,
                   "p_improvement": r.improvements[i].value if r.improvements else math.nan,
                   "p_improvement_ci_low": r.improvements[i].ci_low if r.improvements else math.nan,
                   "p_improvement_ci_high": r.improvements[i].ci_high if r.improvements else math.nan,
                   "paper_a": r.paper.a[i] if r.paper else math.nan,
                   "paper_b": r.paper.b[i] if r.paper else math.nan,
                   "paper_gain_quoted": r.claim.paper_gains[i] if r.claim.paper_gains else math.nan,
                   "ours_gain": (r.ours_gains() or [math.nan] * len(r.claim.metrics))[i]
                   if r.claim.paper_gains else math.nan}
            rows.append(row)
    return pd.DataFrame(rows)


def _tally(results: Sequence[ClaimResult]) -> str:
    counts = {v: sum(r.verdict == v for r in results) for v in VERDICTS}
    return ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v] or v != "undecidable")


_ICON = {"supported": "✅", "not significant": "➖", "undecidable": "⊘", "contradicted": "❌", "untested": "…"}


def claims_markdown(results: Sequence[ClaimResult], precision: int = 3) -> str:
    """A Markdown table of the claims: claim (with the paper's words), verdict, evidence, the paper by means."""
    rows = []
    multi = len({r.scope for r in results}) > 1
    for r in results:
        claim = _claim_cell(r)
        if r.claim.quote:
            claim += f" — “{r.claim.quote}” ({r.claim.section})"
        else:
            claim += f" ({r.claim.section})"
        row = ([r.scope] if multi else []) + [claim, f"{_ICON[r.verdict]} {r.verdict}", r.evidence(precision),
                                              r.paper_text()]
        rows.append(row)
    header = (["Scope"] if multi else []) + ["Claim", "Ours", "Evidence: a − b [95% CI] Holm p", "Paper"]
    md = pd.DataFrame(rows, columns=header).to_markdown(index=False) if rows else "_No claims to check._"
    scope = f" ({results[0].scope})" if results and not multi and results[0].scope else ""
    return (f"**Paper claims on our numbers{scope}: {_tally(results)}** — paired on the same test images; "
            f"supported = every metric better, Holm p < {results[0].alpha if results else 0.05:g} and CI excluding 0 "
            f"(non-inferiority: CI above −margin); undecidable = the design's smallest possible p (sign-flip, "
            f"Holm) is not below alpha; untested: below the floor = a segmentation side does not significantly "
            f"beat the untrained floor segmenter on PQ; the paper's own tables give means only\n\n{md}\n")


def claims_html(results: Sequence[ClaimResult], precision: int = 3) -> str:
    """An HTML table of the claims (verdict coloured, the paper's words in a second line)."""

    esc = html.escape
    parts = ["<table>\n<tr><th>Scope</th><th>Claim</th><th>Ours</th><th>Evidence: a − b [95% CI] Holm p</th>"
             "<th>Paper</th></tr>\n"]
    for r in results:
        quote = (f"<br><small>“{esc(r.claim.quote)}” ({esc(r.claim.section)})</small>" if r.claim.quote
                 else f"<br><small>({esc(r.claim.section)})</small>")
        css = r.verdict.replace(" ", "-")
        parts.append(f"<tr><td class='key'>{esc(r.scope)}</td><td class='key'>{esc(_claim_cell(r))}{quote}</td>"
                     f"<td class='{css}'>{esc(r.verdict)}</td><td class='key'>{esc(r.evidence(precision))}</td>"
                     f"<td class='key'>{esc(r.paper_text())}</td></tr>\n")
    parts.append("</table>\n")
    return "".join(parts)


_COLOUR = {"supported": "green", "not significant": "yellow", "undecidable": "magenta", "contradicted": "red",
           "untested": "dim"}


def claims_rich(results: Sequence[ClaimResult], precision: int = 3, title: str = "Paper claims", *,
                compact: bool = False, aggregation: str | None = None) -> Any:
    """Rich tables of the claims for the terminal, one per scope: claim, verdict, per metric
    ``a − b [95% CI] p`` (or why untested), the paper's outcome by means.

    ``compact``: one short table for a summary screen (claim, our verdict, the paper's outcome by
    means; the evidence is in the report). ``aggregation``: keep the claims of that
    segmentation aggregation (``mean`` or ``pooled``) and those with none (quality).
    """
    if aggregation:
        results = [r for r in results if "aggregation " not in r.scope or f"aggregation {aggregation}" in r.scope]
    if compact:
        table = Table(title=f"{title}: {_tally(results)}", title_justify="left", show_lines=False,
                      caption="paired tests on the same test images (Holm); evidence, CIs and the paper's words: "
                              "the report's claims section" + (f"; segmentation claims on the per-image {aggregation}"
                                                               if aggregation else ""),
                      caption_justify="left")
        table.add_column("Claim", ratio=3)
        table.add_column("Ours", ratio=2)
        table.add_column("Paper (by means)", ratio=1)
        for r in results:
            table.add_row(escape(r.claim.text), f"[{_COLOUR[r.verdict]}]{escape(r.status)}[/]", escape(r.paper_text()))
        return table
    parts: list[Any] = [Text(f"{title}: {_tally(results)}", style="bold")]
    for scope in dict.fromkeys(r.scope for r in results):
        table = Table(title=escape(scope) if scope else None, show_lines=True, title_justify="left")
        table.add_column("Claim", ratio=3)
        table.add_column("Ours", no_wrap=True)
        table.add_column("a − b [95% CI] Holm p", ratio=4)
        table.add_column("Paper", ratio=1)
        for r in results:
            if r.scope != scope:
                continue
            table.add_row(escape(_claim_cell(r)), f"[{_COLOUR[r.verdict]}]{escape(r.verdict)}[/]",
                          escape(r.evidence(precision).replace("; ", "\n")), escape(r.paper_text()))
        parts.append(table)
    return Group(*parts)
