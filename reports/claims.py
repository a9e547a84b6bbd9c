"""The Sharp-GAN paper's qualitative claims, checked on our numbers.

Each claim compares the mean over seeds of two experiments ("A beats B") on a set of
metrics, in each metric's better direction; it **holds** when A is strictly better than B on
every metric, **fails** otherwise, and is **untested** when the records lack one side. The
evidence (both means, stds, seed counts and the difference per metric) is kept with it.

Claims (Sharp-GAN, Sec. 3.2 and 3.3):

1. GAN-DIST beats GAN-Binary on SSIM, FSIM, GMSD and NRMSE ("GAN-DIST outperforms
   GAN-Binary in all metrics").
2. Sharp-GAN beats GAN-DIST on the same four ("outperformes the GAN-DIST in all four metrics").
3. For each segmentation arch, R+S (3k) beats R and R+S (10k) beats R on DQ, SQ, PQ and AJI
   ("their results of the four metrics are all higher than those of the models trained using
   only real images").
4. For each arch, R+S (10k) beats R+S (3k) on DQ, SQ, PQ and AJI ("the segmentation models
   trained using 10k synthetic images and real images outperform ... 3k synthetic images and
   real images"). The paper names no metric here; we hold it to the same four metrics as
   claim 3. On the paper's own Table 2 this claim fails for U-Net (SQ 0.797 < 0.800,
   PQ 0.669 < 0.671).
5. For each arch, S (10k) beats S (3k) on DQ, SQ, PQ and AJI (Table 2; the paper implies it
   with "we synthesize two datasets, one with 10k images and another with 3k").

All segmentation claims use the four metrics of Table 2 (``SEG_METRICS``); pass
``seg_metrics=("pq", "aji")`` to check on PQ and AJI only.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from gbench.core.records import higher_is_better, metric_label, scope_columns
from reports.tables import display_name

__all__ = ["Claim", "ClaimResult", "Evidence", "QUALITY_METRICS", "SEG_METRICS", "sharp_gan_claims",
           "check_claim", "check_claims", "claims_markdown", "claims_html", "claims_frame"]

QUALITY_METRICS: tuple[str, ...] = ("ssim", "fsim", "gmsd", "nrmse")
SEG_METRICS: tuple[str, ...] = ("dq", "sq", "pq", "aji")
Status = Literal["holds", "fails", "untested"]


@dataclass(frozen=True)
class Claim:
    """"``better`` beats ``worse`` on ``metrics``": both sides are (kind, model, train_set)."""

    text: str
    kind: str
    better: tuple[str, str]  # (model, train_set)
    worse: tuple[str, str]
    metrics: tuple[str, ...]
    source: str = "Sharp-GAN"


@dataclass(frozen=True)
class Evidence:
    """One metric of a claim: both means (over seeds), stds, seed counts, and the verdict."""

    metric: str
    better_mean: float
    better_std: float
    better_seeds: int
    worse_mean: float
    worse_std: float
    worse_seeds: int

    @property
    def diff(self) -> float:
        """``better - worse`` (positive is good for a higher-is-better metric)."""
        return self.better_mean - self.worse_mean

    @property
    def ok(self) -> bool:
        """Whether the claimed-better side is strictly better on this metric."""
        if math.isnan(self.diff):
            return False
        return self.diff > 0 if higher_is_better(self.metric) else self.diff < 0


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    status: Status
    evidence: tuple[Evidence, ...] = ()
    scope: str = ""
    reason: str = ""
    failed_metrics: tuple[str, ...] = field(default=())

    def summary(self, precision: int = 3) -> str:
        """One line: the numbers behind the verdict."""
        if self.status == "untested":
            return self.reason
        parts = []
        for e in self.evidence:
            mark = "" if e.ok else " ✗"
            parts.append(f"{metric_label(e.metric)} {e.better_mean:.{precision}f} vs {e.worse_mean:.{precision}f}"
                         f" ({e.diff:+.{precision}f}){mark}")
        return "; ".join(parts)


def sharp_gan_claims(archs: Sequence[str] = ("segnet", "unet"), binary: str = "gan-binary",
                     dist: str = "gan-dist", sharp: str = "sharp-gan",
                     seg_metrics: Sequence[str] = SEG_METRICS) -> list[Claim]:
    """The paper's claims for the given segmentation archs and generator names."""
    seg = tuple(seg_metrics)
    claims = [
        Claim(f"{display_name(dist)} beats {display_name(binary)} on SSIM, FSIM, GMSD and NRMSE", "quality",
              (dist, "R"), (binary, "R"), QUALITY_METRICS, "Sharp-GAN, Sec. 3.2 / Table 1"),
        Claim(f"{display_name(sharp)} beats {display_name(dist)} on SSIM, FSIM, GMSD and NRMSE", "quality",
              (sharp, "R"), (dist, "R"), QUALITY_METRICS, "Sharp-GAN, Sec. 3.2 / Table 1"),
    ]
    names = ", ".join(metric_label(m) for m in seg[:-1]) + f" and {metric_label(seg[-1])}" if len(seg) > 1 \
        else metric_label(seg[0])
    for arch in archs:
        a = display_name(arch)
        for better, worse in (("R+S3k", "R"), ("R+S10k", "R"), ("R+S10k", "R+S3k"), ("S10k", "S3k")):
            claims.append(Claim(f"{a}: {display_name(better)} beats {display_name(worse)} on {names}",
                                "segmentation", (arch, better), (arch, worse), seg, "Sharp-GAN, Sec. 3.3 / Table 2"))
    return claims


def _side(records: pd.DataFrame, kind: str, model: str, train_set: str, metric: str) -> tuple[float, float, int]:
    sel = records[(records["kind"] == kind) & (records["model"] == model) & (records["train_set"] == train_set)
                  & (records["metric"] == metric)]
    if sel.empty:
        return math.nan, math.nan, 0
    v = sel["value"].astype("float64")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan, int(sel["seed"].nunique())


def check_claim(claim: Claim, records: pd.DataFrame, scope: str = "") -> ClaimResult:
    """Check one claim on records of one scope (one dataset, profile and split)."""
    evidence = []
    missing: dict[tuple[str, str], list[str]] = {}
    for m in claim.metrics:
        b = _side(records, claim.kind, *claim.better, m)
        w = _side(records, claim.kind, *claim.worse, m)
        for side, stats in ((claim.better, b), (claim.worse, w)):
            if stats[2] == 0:
                missing.setdefault(side, []).append(m)
        evidence.append(Evidence(m, *b, *w))
    if missing:
        parts = []
        for (model, train_set), ms in missing.items():
            what = "" if len(ms) == len(claim.metrics) else " ".join(metric_label(m) for m in ms) + " "
            parts.append(f"{what}records of {display_name(model)} {display_name(train_set)}")
        return ClaimResult(claim, "untested", tuple(evidence), scope, "no " + "; no ".join(parts))
    failed = tuple(e.metric for e in evidence if not e.ok)
    return ClaimResult(claim, "fails" if failed else "holds", tuple(evidence), scope, "", failed)


def check_claims(records: pd.DataFrame, claims: Sequence[Claim] | None = None, **claim_options: object) -> list[ClaimResult]:
    """Check claims on every scope of the records (dataset x profile x split x extra keys such as
    ``aggregation``; see :func:`gbench.core.records.scope_columns`).

    With several scopes, a scope is only checked for the claims of the kinds it holds (a
    segmentation-only scope lists no quality claims); with one scope every claim is listed,
    untested where records are missing.

    Args:
        records: Our records (any kinds; claims pick what they need).
        claims: Claims to check; default :func:`sharp_gan_claims` over the archs present in
            the segmentation records (``segnet`` and ``unet`` when there are none).
        **claim_options: Passed to :func:`sharp_gan_claims` (``seg_metrics``, generator names).

    Returns:
        One result per claim and scope, in order.
    """
    scopes = scope_columns(records)
    results: list[ClaimResult] = []
    if records.empty or not scopes:
        groups: list[tuple[tuple[str, ...], pd.DataFrame]] = [((), records)]
    else:
        groups = [(k if isinstance(k, tuple) else (k,), g) for k, g in records.fillna({c: "" for c in scopes}).groupby(scopes, sort=False)]
    for key, sub in groups:
        if claims is None:
            archs = list(dict.fromkeys(sub.loc[sub["kind"] == "segmentation", "model"])) or ["segnet", "unet"]
            todo = sharp_gan_claims(archs=archs, **claim_options)  # type: ignore[arg-type]
        else:
            todo = list(claims)
        kinds = set(sub["kind"]) if len(groups) > 1 else {c.kind for c in todo}
        scope = ", ".join(f"{c} {v}" for c, v in zip(scopes, key) if v != "")
        results += [check_claim(c, sub, scope) for c in todo if c.kind in kinds]
    return results


def claims_frame(results: Sequence[ClaimResult], precision: int = 3) -> pd.DataFrame:
    """Results as a DataFrame: scope, claim, status, evidence (one line), source."""
    return pd.DataFrame([{"scope": r.scope, "claim": r.claim.text, "status": r.status,
                          "evidence": r.summary(precision), "source": r.claim.source} for r in results],
                        columns=["scope", "claim", "status", "evidence", "source"])


def claims_markdown(results: Sequence[ClaimResult], precision: int = 3) -> str:
    """A Markdown table of the claims with their verdicts and numbers, and a tally line."""
    frame = claims_frame(results, precision)
    counts = frame["status"].value_counts()
    tally = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in ("holds", "fails", "untested"))
    frame = frame.assign(status=frame["status"].map({"holds": "✅ holds", "fails": "❌ fails",
                                                     "untested": "… untested"}))
    cols = ["claim", "status", "evidence"] if frame["scope"].nunique() <= 1 else ["scope", "claim", "status",
                                                                                  "evidence"]
    scope = f" ({results[0].scope})" if results and frame["scope"].nunique() == 1 and results[0].scope else ""
    md = frame[cols].to_markdown(index=False)
    return (f"**Paper claims on our numbers{scope}: {tally}** — evidence: claimed-better vs other "
            f"(difference), ✗ where the claim fails\n\n{md}\n")


def claims_html(results: Sequence[ClaimResult], precision: int = 3) -> str:
    """An HTML table of the claims (status coloured)."""
    import html

    parts = ["<table>\n<tr><th>Scope</th><th>Claim</th><th>Status</th><th>Evidence</th></tr>\n"]
    for r in results:
        parts.append(f"<tr><td class='key'>{html.escape(r.scope)}</td><td class='key'>{html.escape(r.claim.text)}"
                     f"</td><td class='{r.status}'>{r.status}</td><td class='key'>"
                     f"{html.escape(r.summary(precision))}</td></tr>\n")
    parts.append("</table>\n")
    return "".join(parts)
