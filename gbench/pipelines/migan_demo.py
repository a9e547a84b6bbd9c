"""``gbench demo mi-gan``: train MI-GAN1 on the built-in SiHa-like stacks, sample, evaluate; transfer.

:func:`evaluate_stacks` scores a set of synthetic focus stacks against the real test stacks with
gbench's multi-focus metrics (:mod:`gbench.metrics.multifocus`) and checks it against the
targets below, beside two floors that a generator that learnt nothing about focus, or nothing
about variety, would reach:

``shuffled planes``
    real training stacks with their 11 planes permuted at random (per stack, seeded): every
    plane is a real cell image, but the focus order is gone.
``mean stack``
    the per-plane mean image of the training set, as many copies as samples: the right focus
    order and colours, no variety at all.

and a reference that marks the best a generator can do at this sample size:

``real (train)``
    real training stacks against the real test stacks (FID and KID are biased upwards at small
    N; this is the value of a perfect generator).

Targets (issue 16), measured on ``n`` samples against ``n`` real test stacks (the demo: 256;
at 64 the same model's KID moved between 0.04 and 0.36 from one draw of samples to the next,
at 256 between 0.28 and 0.35):

==================================  =============================================================
focus peak                          the mean focus curve of the samples peaks at I0 or +-1
inter-plane SSIM                    within 0.1 of the real stacks' (successive planes)
diversity                           per-pixel std across samples >= 0.5 x the real set's
FID, KID (per-plane mean)           at most :data:`CLEARLY` (half) of the lower floor
==================================  =============================================================

FID and KID here are the mean over the 11 planes of the per-plane values (real plane ``k`` vs
synthetic plane ``k``), so that a set with the wrong focus order scores badly; the pooled value
over all planes is reported as well. They use the offline random-conv extractor by default and
are **not comparable with published FID/KID**. The features are **rescaled** first: centred on
the real test stacks' mean feature and divided by one number, the root-mean-square standard
deviation of the real test features (all planes). FID is then the raw FID divided by that number
squared (the same ranking of any two sets); KID changes: the random-conv features of these cells
vary across cells by about 5% of their magnitude, so on raw features KID's cubic kernel
``(x.y / d + 1)^3`` sees almost only the mean, and a set of identical mean images scores a KID
of 0, as good as real stacks (measured, 64 stacks each: raw KID -9e-5 for the mean stack, -3e-4
for real training stacks, 0.025 for shuffled planes; rescaled: 0.72, -0.19 and 6.3; rescaled
FID 35, 0.43 and 99).

:func:`demo_migan` is the demo; :func:`transfer_experiment` tests the paper's MI-GAN2 claim
(transfer from MI-GAN1 beats training from scratch on the smaller cancer set) with several
seeds and a paired test across seeds (:mod:`gbench.core.stats`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from gbench.core.fileio import atomic_path, write_json, write_text
from gbench.core.observations import hash_test_set
from gbench.core.profiles import Profile, as_profile
from gbench.core.stats import FailedRun, NotComparable, compare_experiments, estimate, metric_verdict
from gbench.data.multifocus import plane_labels, stack_array
from gbench.data.resolve import load_stacks
from gbench.metrics.failures import multifocus_failure, stack_diversity
from gbench.metrics.focus import mean_curve_l1
from gbench.metrics.multifocus import (
    fid_from_features,
    focus_curve,
    get_extractor,
    interplane_ssim,
    kid_from_features,
    plane_features,
)
from gbench.generators.mi_gan import load_mi_gan
from gbench.generators.mi_gan_train import schedule_for, train_migan, write_stack_grid

__all__ = ["CLEARLY", "TARGETS", "StackEvaluation", "evaluate_stacks", "shuffled_planes", "mean_stack",
           "demo_migan", "transfer_experiment", "transfer_verdict", "targets_table", "floors_table", "focus_figure",
           "TRANSFER_METRICS", "TRANSFER_QUOTE", "DEFAULT_TRANSFER_SEEDS", "TransferResult", "transfer_table",
           "transfer_markdown"]

#: "Clearly below a floor": the value is at most this share of the floor.
CLEARLY = 0.5
#: The targets of :func:`evaluate_stacks` (name -> rule), as printed.
TARGETS: dict[str, str] = {
    "focus_peak": "I0 or +-1",
    "interplane_ssim": "within 0.1 of real",
    "diversity": ">= 0.5 x real",
    "fid": f"<= {CLEARLY:g} x lower floor",
    "kid": f"<= {CLEARLY:g} x lower floor",
}
#: Seed of the evaluation (extractor weights, plane shuffling): fixed, so that runs with different
#: training seeds are measured with the same ruler.
EVAL_SEED = 0
#: Metrics of the transfer claim (all lower is better).
TRANSFER_METRICS: tuple[str, ...] = ("fid", "kid", "focus_curve_l1")


def shuffled_planes(stacks: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each stack with its planes in a random order (seeded; a plane may stay where it was)."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(stacks)
    for i, s in enumerate(stacks):
        out[i] = s[rng.permutation(s.shape[0])]
    return out


def mean_stack(stacks: np.ndarray, n: int) -> np.ndarray:
    """``n`` copies of the per-plane mean image of ``stacks`` (uint8)."""
    m = np.clip(np.rint(stacks.astype(np.float64).mean(axis=0)), 0, 255).astype(np.uint8)
    return np.repeat(m[None], n, axis=0)


@dataclass
class StackEvaluation:
    """The multi-focus figures of one synthetic set (and of the floors), with the targets.

    Attributes:
        values: ``{set name: {metric: value}}`` for ``mi-gan`` (or the evaluated set's name),
            ``real (train)``, ``shuffled planes``, ``mean stack``; metrics ``fid``, ``kid``
            (per-plane means), ``fid_pooled``, ``kid_pooled``, ``focus_peak`` (plane offset),
            ``focus_curve_l1``, ``interplane_ssim``, ``diversity``.
        real: the real test set's ``interplane_ssim``, ``diversity`` and ``focus_peak``.
        checks: ``{target: (passed, text)}``.
        failure: :func:`gbench.metrics.failures.multifocus_failure` of the samples ("" = learnt).
        focus_real, focus_fake: mean focus curves (raw variance of the Laplacian per plane).
        extractor, note: the feature extractor and its comparability note.
        n_real, n_fake: set sizes.
    """

    name: str
    values: dict[str, dict[str, float]]
    real: dict[str, float]
    checks: dict[str, tuple[bool, str]]
    failure: str
    focus_real: np.ndarray
    focus_fake: np.ndarray
    extractor: str
    note: str
    n_real: int
    n_fake: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failure and all(ok for ok, _ in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "values": self.values, "real": self.real,
                "checks": {k: {"passed": bool(ok), "text": t} for k, (ok, t) in self.checks.items()},
                "failure": self.failure, "status": "failed" if self.failure else "ok", "passed": self.passed,
                "focus_curve_real": self.focus_real.tolist(), "focus_curve_fake": self.focus_fake.tolist(),
                "extractor": self.extractor, "note": self.note, "n_real": self.n_real, "n_fake": self.n_fake,
                "clearly": CLEARLY, **self.info}


def _set_figures(real: np.ndarray, fake: np.ndarray, fr: np.ndarray, ff: np.ndarray) -> dict[str, float]:
    p = real.shape[1]
    fids = [fid_from_features(ff[:, k], fr[:, k]) for k in range(p)]
    kids = [kid_from_features(ff[:, k], fr[:, k], subsets=1, subset_size=max(len(fr), len(ff)))[0] for k in range(p)]
    pr, pf = fr.reshape(-1, fr.shape[-1]), ff.reshape(-1, ff.shape[-1])
    curves_real, curves_fake = focus_curve(real), focus_curve(fake)
    cf = curves_fake.mean(0)
    return {
        "fid": float(np.mean(fids)), "kid": float(np.mean(kids)),
        "fid_pooled": fid_from_features(pf, pr),
        "kid_pooled": kid_from_features(pf, pr, subsets=1, subset_size=max(len(pr), len(pf)))[0],
        "focus_peak": float(int(np.argmax(cf)) - p // 2),
        "focus_curve_l1": mean_curve_l1(curves_fake, curves_real),
        "interplane_ssim": float(interplane_ssim(fake).mean()),
        "diversity": stack_diversity(fake),
    }


def evaluate_stacks(fake: np.ndarray, real_test: np.ndarray, real_train: np.ndarray, *, seed: int = 0,
                    extractor: Any = None, name: str = "mi-gan", floors: bool = True) -> StackEvaluation:
    """Score synthetic stacks against the real test stacks, beside the floors, against the targets.

    Args:
        fake: synthetic stacks ``(N, P, S, S, 3)`` uint8.
        real_test: real test stacks (the reference distribution).
        real_train: real training stacks (the floors are made from them).
        seed: extractor weights and plane shuffling.
        extractor: feature extractor (default: the offline random-conv one, seeded).
        name: the set's name in the tables.
        floors: compute the floors and the reference (the checks need them).

    Returns:
        A :class:`StackEvaluation`.
    """

    for label, s in (("synthetic", fake), ("real test", real_test), ("real train", real_train)):
        if s.ndim != 5 or s.shape[-1] != 3 or s.dtype != np.uint8 or len(s) < 2:
            raise ValueError(f"{label} stacks must be uint8 (N >= 2, P, H, W, 3), got {s.shape} {s.dtype}")
    if fake.shape[1:] != real_test.shape[1:] or real_train.shape[1:] != real_test.shape[1:]:
        raise ValueError(f"stack shapes differ: synthetic {fake.shape[1:]}, test {real_test.shape[1:]}, "
                         f"train {real_train.shape[1:]}")
    ext = extractor if extractor is not None else get_extractor("random-conv", seed=seed)
    n = len(fake)
    fr_raw = plane_features(real_test, ext)
    pooled = fr_raw.reshape(-1, fr_raw.shape[-1])
    mu, sd = pooled.mean(0), float(np.sqrt(pooled.var(0).mean())) + 1e-12

    def features(stacks: np.ndarray) -> np.ndarray:
        return (plane_features(stacks, ext) - mu) / sd  # rescaled: see the module docstring

    fr = (fr_raw - mu) / sd
    sets = {name: fake}
    if floors:
        k = min(n, len(real_train))
        sets.update({"real (train)": real_train[:k], "shuffled planes": shuffled_planes(real_train[:k], seed),
                     "mean stack": mean_stack(real_train, n)})
    values = {label: _set_figures(real_test, s, fr, features(s)) for label, s in sets.items()}
    p = real_test.shape[1]
    cr = focus_curve(real_test).mean(0)
    real = {"interplane_ssim": float(interplane_ssim(real_test).mean()), "diversity": stack_diversity(real_test),
            "focus_peak": float(int(np.argmax(cr)) - p // 2)}
    v = values[name]
    checks: dict[str, tuple[bool, str]] = {}
    checks["focus_peak"] = (abs(v["focus_peak"]) <= 1, f"peak at {_plane(v['focus_peak'])} (real {_plane(real['focus_peak'])})")
    gap = abs(v["interplane_ssim"] - real["interplane_ssim"])
    checks["interplane_ssim"] = (gap <= 0.1, f"{v['interplane_ssim']:.3f} vs real {real['interplane_ssim']:.3f} "
                                             f"(gap {gap:.3f})")
    ratio = v["diversity"] / max(real["diversity"], 1e-12)
    checks["diversity"] = (ratio >= 0.5, f"{v['diversity']:.2f} vs real {real['diversity']:.2f} ({ratio:.2f} x)")
    if floors:
        for m in ("fid", "kid"):
            floor = min(values["shuffled planes"][m], values["mean stack"][m])
            checks[m] = (v[m] <= CLEARLY * floor, f"{v[m]:.4g} vs floors {values['shuffled planes'][m]:.4g} (shuffled), "
                                                  f"{values['mean stack'][m]:.4g} (mean) -> {v[m] / max(floor, 1e-12):.2f} x")
    failure = multifocus_failure(fake, real_test)
    return StackEvaluation(name, values, real, checks, failure, cr, focus_curve(fake).mean(0),
                           ext.describe() if hasattr(ext, "describe") else str(ext), getattr(ext, "note", ""),
                           len(real_test), n)


def _plane(offset: float) -> str:
    k = int(round(offset))
    return "I0" if k == 0 else f"I{k:+d}"


def targets_table(ev: StackEvaluation, title: str = "MI-GAN targets") -> Any:
    """A rich table: each target, the samples' value, the real value / floors, pass or not."""

    t = Table(title=title)
    for col in ("target", "rule", "result", "measured"):
        t.add_column(col, overflow="fold")
    for key, rule in TARGETS.items():
        if key not in ev.checks:
            continue
        ok, text = ev.checks[key]
        t.add_row(key.replace("_", " "), rule, "[green]met[/]" if ok else "[red]missed[/]", text)
    if ev.failure:
        t.caption = f"[red]FAILED RUN: {ev.failure}[/]"
    else:
        t.caption = f"features: {ev.extractor}; {ev.note}"
    return t


def floors_table(ev: StackEvaluation) -> Any:
    """A rich table of every set's figures (samples, reference, floors)."""

    t = Table(title=f"multi-focus figures ({ev.n_fake} samples vs {ev.n_real} real test stacks)")
    cols = ("fid", "kid", "fid_pooled", "focus_peak", "focus_curve_l1", "interplane_ssim", "diversity")
    t.add_column("set")
    for c in cols:
        t.add_column(c.replace("_", " "), justify="right")
    t.add_row("real (test)", "", "", "", _plane(ev.real["focus_peak"]), "0", f"{ev.real['interplane_ssim']:.3f}",
              f"{ev.real['diversity']:.2f}")
    for label, v in ev.values.items():
        t.add_row(label, f"{v['fid']:.4g}", f"{v['kid']:.3g}", f"{v['fid_pooled']:.4g}", _plane(v["focus_peak"]),
                  f"{v['focus_curve_l1']:.3f}", f"{v['interplane_ssim']:.3f}", f"{v['diversity']:.2f}")
    return t


# ------------------------------------------------------------------------------------------- the demo


def _stacks(name: str, split: str, n: int, size: int, planes: int, data_seed: int) -> np.ndarray:
    return stack_array(load_stacks(name, split=split, n=n, size=size, planes=planes, seed=data_seed))  # type: ignore[arg-type]


def _train_stacks(run_record: dict[str, Any], data_seed: int) -> np.ndarray:
    cfg = run_record["config"]
    return _stacks(run_record["data"], "train", int(run_record["n_train_stacks"]), int(cfg["image_size"]),
                   int(cfg["planes"]), data_seed)


def focus_figure(ev: StackEvaluation, path: str | Path, extra: dict[str, np.ndarray] | None = None) -> Path:
    """The mean focus curves (each normalised to its peak) of the real and synthetic stacks, as a PNG."""
    import matplotlib  # lazy: matplotlib: the Agg backend is chosen first

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib: the Agg backend is chosen first


    labels = plane_labels(len(ev.focus_real))
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    curves = {"real (test)": ev.focus_real, ev.name: ev.focus_fake, **(extra or {})}
    for label, c in curves.items():
        ax.plot(x, c / max(float(np.max(c)), 1e-12), marker="o", label=label)
    ax.set_xticks(x, labels)
    ax.set_ylabel("variance of Laplacian / peak")
    ax.set_title("Focus curve: mean over stacks")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def _summary_md(ev: StackEvaluation, header: str) -> str:
    lines = [f"# {header}", "", f"{ev.n_fake} samples vs {ev.n_real} real test stacks; features {ev.extractor} "
             f"({ev.note}). FID/KID: mean of the per-plane values.", ""]
    lines += ["| target | rule | result | measured |", "|---|---|---|---|"]
    for key, rule in TARGETS.items():
        if key in ev.checks:
            ok, text = ev.checks[key]
            lines.append(f"| {key.replace('_', ' ')} | {rule} | {'met' if ok else 'missed'} | {text} |")
    lines += ["", f"run status: {'FAILED (' + ev.failure + ')' if ev.failure else 'ok'}", ""]
    cols = ("fid", "kid", "fid_pooled", "focus_peak", "focus_curve_l1", "interplane_ssim", "diversity")
    lines += ["| set | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines.append(f"| real (test) | | | | {_plane(ev.real['focus_peak'])} | 0 | {ev.real['interplane_ssim']:.3f} | "
                 f"{ev.real['diversity']:.2f} |")
    for label, v in ev.values.items():
        lines.append(f"| {label} | {v['fid']:.4g} | {v['kid']:.3g} | {v['fid_pooled']:.4g} | {_plane(v['focus_peak'])} | "
                     f"{v['focus_curve_l1']:.3f} | {v['interplane_ssim']:.3f} | {v['diversity']:.2f} |")
    return "\n".join(lines) + "\n"


def demo_migan(out: str | Path, *, profile: Profile | str = "demo", seed: int = 0, data_seed: int = 0, console: Any = None,
               progress: bool = True, resume: bool = False, transfer: bool = False,
               transfer_seeds: tuple[int, ...] | None = None, device: str | None = None) -> dict[str, Any]:
    """Train MI-GAN1 on ``synthetic-cells:siha``, sample, evaluate against the targets; optionally transfer.

    Writes under ``out``: ``mi-gan1/`` (the run: ``mi-gan.pt``, ``samples.png``, ``run.json``, ...),
    ``sample_sheet.png`` (8 synthetic stacks, rows = cells, columns = I-5 .. I+5),
    ``real_sheet.png``, ``focus_curve.png``, ``evaluation.json``, ``summary.md``, and with
    ``transfer`` the folder ``transfer/`` of :func:`transfer_experiment`.

    Returns:
        ``{"evaluation": StackEvaluation, "seconds": {...}, "files": {...}, "transfer": ... }``.
    """


    console = console or Console()
    out = Path(out)
    t0 = time.perf_counter()
    prof = as_profile(profile)
    sched = schedule_for(prof)
    console.rule(f"gbench demo mi-gan: MI-GAN1 on synthetic-cells:siha (profile {prof.name}, seed {seed}, "
                 f"data seed {data_seed})")
    run = train_migan("synthetic-cells:siha", out / "mi-gan1", profile=prof, seed=seed, data_seed=data_seed,
                      resume=resume, progress=progress, device=device)
    t_train = time.perf_counter() - t0
    model, _ = load_mi_gan(run.model_path)
    cfg = model.config
    n_eval = int(sched["n_eval"] or 64)
    t1 = time.perf_counter()
    fake = model.sample(n_eval, seed=seed + 1000)
    real_test = _stacks("synthetic-cells:siha", "test", n_eval, cfg.image_size, cfg.planes, data_seed)
    real_train = _train_stacks(run.record, data_seed)
    ev = evaluate_stacks(fake, real_test, real_train, seed=EVAL_SEED)
    t_eval = time.perf_counter() - t1
    files = {"run": run.out_dir, "sample_sheet": write_stack_grid(out / "sample_sheet.png", fake[:8]),
             "real_sheet": write_stack_grid(out / "real_sheet.png", real_test[:8])}
    files["focus_curve"] = focus_figure(ev, out / "focus_curve.png",
                                        {"shuffled planes (floor)": _focus_of(shuffled_planes(real_train, EVAL_SEED))})
    seconds = {"train": round(t_train, 1), "sample + evaluate": round(t_eval, 1),
               "total": round(time.perf_counter() - t0, 1)}
    record = {"demo": "mi-gan", "profile": prof.name, "seed": seed, "data_seed": data_seed, "n_eval": n_eval,
              "train_seconds": run.record["phases"], "seconds": seconds, "config": cfg.to_dict(),
              "steps_per_phase": run.record["steps_per_phase"], "batch_size": run.record["batch_size"],
              "n_train_stacks": run.record["n_train_stacks"], **ev.to_dict(),
              "provenance": run.record.get("provenance", {})}
    files["evaluation"] = write_json(out / "evaluation.json", record)
    files["summary"] = write_text(out / "summary.md", _summary_md(ev, f"MI-GAN1 demo (profile {prof.name}, seed {seed})"))
    console.print(floors_table(ev))
    console.print(targets_table(ev, f"MI-GAN1 on synthetic-cells:siha: targets ({'met' if ev.passed else 'not all met'})"))
    console.print(f"MI-GAN1: {run.record['steps_per_phase']['g1']} G1 + {run.record['steps_per_phase']['g2']} G2 steps, "
                  f"trained in {t_train:.0f} s, evaluated in {t_eval:.0f} s; total {seconds['total']:.0f} s")
    console.print(f"sample sheet {files['sample_sheet']}, focus curve {files['focus_curve']}, summary {files['summary']}")
    result: dict[str, Any] = {"evaluation": ev, "seconds": seconds, "files": files, "run": run}
    if transfer:
        result["transfer"] = transfer_experiment(out / "transfer", run.out_dir, profile=prof,
                                                 seeds=transfer_seeds, data_seed=data_seed, console=console,
                                                 progress=progress, resume=resume, device=device)
    return result


def _focus_of(stacks: np.ndarray) -> np.ndarray:
    return focus_curve(stacks).mean(0)


# ------------------------------------------------------------------------------------------ transfer

#: The paper's transfer claim (Morooka et al. 2019, Sec. 3), in its words.
TRANSFER_QUOTE = ("the pretrained GAN by using one type of cells is useful to construct GAN for producing "
                  "another type of cells")
#: Default training seeds of the transfer experiment. With seeds as the resampling units, an exact
#: sign-flip test over n seeds cannot give a two-sided p below 2 / 2**n, and Holm over the three
#: metrics multiplies the smallest p by 3: "supported" needs at least 7 seeds.
DEFAULT_TRANSFER_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)


@dataclass
class TransferResult:
    """What :func:`transfer_experiment` found.

    Attributes:
        per_seed: one row per (side, seed): ``side`` (``transfer`` / ``scratch``), ``seed``,
            the three metrics, ``status``, ``failure``, ``seconds``.
        estimates: ``{side: {metric: Estimate}}`` (mean over seeds with its bootstrap CI over seeds).
        differences: :class:`gbench.core.stats.Difference` per metric (transfer - scratch, paired by seed).
        metric_verdicts: ``{metric: better | worse | not significant | untested}``.
        verdict: ``supported`` / ``not significant`` / ``contradicted`` / ``untested: reason``.
        method: how the test was made (units, test, resamples).
    """

    per_seed: list[dict[str, Any]]
    estimates: dict[str, dict[str, Any]]
    differences: list[Any]
    metric_verdicts: dict[str, str]
    verdict: str
    method: str
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        est = {side: {m: {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "method": e.method}
                      for m, e in d.items()} for side, d in self.estimates.items()}
        diffs = [{"metric": d.metric, "transfer": d.a, "scratch": d.b, "diff": d.diff, "ci_low": d.ci_low,
                  "ci_high": d.ci_high, "p": d.p, "p_holm": d.p_adjusted, "test": d.test, "method": d.method,
                  "verdict": self.metric_verdicts.get(d.metric, "")} for d in self.differences]
        return {"claim": TRANSFER_QUOTE, "verdict": self.verdict, "method": self.method, "per_seed": self.per_seed,
                "estimates": est, "differences": diffs, **self.info}


def _seed_observations(rows: list[dict[str, Any]], side: str, profile: str, test_set: str) -> Any:
    """Observations with the training seed as the resampling unit (one row per seed)."""

    return pd.DataFrame([{"kind": "multifocus", "model": f"mi-gan2 {side}", "train_set": "R", "profile": profile,
                          "seed": 0, "dataset": "synthetic-cells:cancer", "split": "test",
                          "image": f"seed-{r['seed']}", "unit": f"seed-{r['seed']}", "test_set": test_set,
                          "status": r["status"], "failure": r["failure"],
                          **{m: r[m] for m in TRANSFER_METRICS}} for r in rows if r["side"] == side])


def transfer_verdict(obs_transfer: Any, obs_scratch: Any, *, n_resamples: int = 2000, alpha: float = 0.05) -> tuple[
        dict[str, dict[str, Any]], list[Any], dict[str, str], str, str]:
    """Estimates, paired differences, per-metric verdicts and the claim verdict of transfer vs scratch.

    The observations hold one row per training seed (the unit). Per side and metric, the mean over
    seeds with a bootstrap CI over seeds (:func:`gbench.core.stats.estimate`); per metric, the paired
    difference transfer - scratch (seeds matched; :func:`gbench.core.stats.compare_experiments`:
    paired-bootstrap CI, exact sign-flip permutation p, Holm across the three metrics) and
    :func:`gbench.core.stats.metric_verdict`. The claim is ``supported`` when every metric is
    ``better``, ``contradicted`` when one is ``worse``, ``untested`` when a run failed.
    """

    n = len(obs_transfer)
    method = (f"units = training seeds ({n} pairs, matched by seed; FID/KID are set statistics with no per-stack "
              f"value): paired bootstrap CI ({n_resamples} resamples), exact sign-flip permutation p "
              f"(smallest possible two-sided p = {2 / 2 ** n:.3g}), Holm across {len(TRANSFER_METRICS)} metrics")
    estimates: dict[str, dict[str, Any]] = {}
    for side, obs in (("transfer", obs_transfer), ("scratch", obs_scratch)):
        ok = obs[obs["status"] != "failed"]
        estimates[side] = {m: estimate(ok, m, n_resamples=n_resamples) for m in TRANSFER_METRICS} if len(ok) else {}
    try:
        diffs = compare_experiments(obs_transfer, obs_scratch, TRANSFER_METRICS, test="permutation", alpha=alpha,
                                    n_resamples=n_resamples)
    except FailedRun as exc:
        return estimates, [], {}, f"untested: failed run ({exc})", method
    except NotComparable as exc:
        return estimates, [], {}, f"untested: {exc}", method
    verdicts = {d.metric: metric_verdict(d, alpha) for d in diffs}
    vs = list(verdicts.values())
    if "untested" in vs:
        verdict = "untested: too few seeds for an interval"
    elif all(v == "better" for v in vs):
        verdict = "supported"
    elif "worse" in vs:
        verdict = "contradicted"
    else:
        verdict = "not significant"
    return estimates, diffs, verdicts, verdict, method


def transfer_experiment(out: str | Path, source: str | Path, *, profile: Profile,
                        seeds: tuple[int, ...] | None = None, data_seed: int = 0, console: Any = None,
                        progress: bool = True, resume: bool = False, device: str | None = None,
                        n_resamples: int = 2000) -> TransferResult:
    """The paper's MI-GAN2: on ``synthetic-cells:cancer`` (about half the SiHa count), MI-GAN2
    initialised from MI-GAN1 (``source``) against MI-GAN2 from scratch, the same step budget for
    both (``transfer_steps_g1`` / ``transfer_steps_g2`` of the profile's ``migan`` section; demo:
    400 G1 + 80 G2 steps, half MI-GAN1's
    G1 budget), for each of ``seeds``.

    Each run draws ``n_eval`` stacks and is scored against the cancer test stacks
    (:func:`evaluate_stacks`: per-plane-mean FID and KID, focus-curve distance); a run that
    :func:`gbench.metrics.failures.multifocus_failure` flags is ``failed``. The verdict comes from
    :func:`transfer_verdict` (seeds as the units). Writes ``transfer.json``, ``transfer.md``,
    ``per_seed.csv`` and the runs ``transfer-s<seed>/``, ``scratch-s<seed>/``.
    """


    console = console or Console()
    out = Path(out)
    seeds = tuple(seeds) if seeds else DEFAULT_TRANSFER_SEEDS
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"transfer seeds must differ, got {seeds}")
    sched = schedule_for(profile)
    n_eval = int(sched["n_eval"] or 64)
    src_model, _ = load_mi_gan(source)
    cfg = src_model.config
    real_test = _stacks("synthetic-cells:cancer", "test", n_eval, cfg.image_size, cfg.planes, data_seed)
    test_set = hash_test_set((f"cancer-test-{i:05d}", s, b"") for i, s in enumerate(real_test))
    console.rule(f"transfer: MI-GAN2 on synthetic-cells:cancer from MI-GAN1 vs from scratch, seeds "
                 f"{', '.join(map(str, seeds))}")
    rows: list[dict[str, Any]] = []
    arch = {k: v for k, v in cfg.to_dict().items()
            if k not in ("lr", "betas", "n_critic", "g2_n_critic", "gp_lambda", "g2_l1", "g2_lr", "precise_bn",
                         "lr_decay")}
    for seed in seeds:
        for side in ("transfer", "scratch"):
            t0 = time.perf_counter()
            kw: dict[str, Any] = {"init_from": source} if side == "transfer" else dict(arch)
            run = train_migan("synthetic-cells:cancer", out / f"{side}-s{seed}", profile=profile, seed=seed,
                              data_seed=data_seed, resume=resume, progress=progress, device=device,
                              steps=sched["transfer_steps_g1"], steps_g2=sched["transfer_steps_g2"], **kw)
            model, _ = load_mi_gan(run.model_path)
            fake = model.sample(n_eval, seed=seed + 1000)
            ev = evaluate_stacks(fake, real_test, _train_stacks(run.record, data_seed), seed=EVAL_SEED,
                                 name=f"mi-gan2 {side}", floors=False)
            row = {"side": side, "seed": seed, **{m: ev.values[ev.name][m] for m in TRANSFER_METRICS},
                   "focus_peak": ev.values[ev.name]["focus_peak"], "diversity": ev.values[ev.name]["diversity"],
                   "status": "failed" if ev.failure else "ok", "failure": ev.failure,
                   "seconds": round(time.perf_counter() - t0, 1)}
            rows.append(row)
            console.print(f"  seed {seed} {side:8s}: FID {row['fid']:.4g}  KID {row['kid']:.3g}  focus-curve distance "
                          f"{row['focus_curve_l1']:.3f}  {'[red]FAILED: ' + ev.failure + '[/]' if ev.failure else 'ok'}"
                          f"  ({row['seconds']:.0f} s)")
    obs_t = _seed_observations(rows, "transfer", profile.name, test_set)
    obs_s = _seed_observations(rows, "scratch", profile.name, test_set)
    estimates, diffs, verdicts, verdict, method = transfer_verdict(obs_t, obs_s, n_resamples=n_resamples)
    res = TransferResult(rows, estimates, diffs, verdicts, verdict, method,
                         {"profile": profile.name, "seeds": list(seeds), "data_seed": data_seed, "n_eval": n_eval,
                          "source": str(source),
                          "steps_per_phase": {"g1": sched["transfer_steps_g1"], "g2": sched["transfer_steps_g2"]},
                          "test_set": test_set})
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "per_seed.csv", pd.DataFrame(rows).to_csv(index=False))
    write_json(out / "transfer.json", res.to_dict())
    write_text(out / "transfer.md", transfer_markdown(res))
    console.print(transfer_table(res))
    return res


def _ci(e: Any) -> str:
    if e is None:
        return "failed"
    if math.isnan(e.ci_low):
        return f"{e.value:.4g}"
    return f"{e.value:.4g} [{e.ci_low:.4g}, {e.ci_high:.4g}]"


def transfer_table(res: TransferResult) -> Any:
    """Rich table: per metric, transfer and scratch (mean over seeds, 95% CI), the paired difference, p, verdict."""

    t = Table(title=f"MI-GAN2 transfer vs scratch: {res.verdict}")
    for c in ("metric", "transfer [95% CI]", "scratch [95% CI]", "transfer - scratch [95% CI]", "p (Holm)", "verdict"):
        t.add_column(c, overflow="fold")
    by = {d.metric: d for d in res.differences}
    for m in TRANSFER_METRICS:
        d = by.get(m)
        t.add_row(m, _ci(res.estimates.get("transfer", {}).get(m)), _ci(res.estimates.get("scratch", {}).get(m)),
                  f"{d.diff:.4g} [{d.ci_low:.4g}, {d.ci_high:.4g}]" if d else "",
                  f"{d.p:.3g} ({d.p_adjusted:.3g})" if d else "", res.metric_verdicts.get(m, ""))
    t.caption = f'paper: "{TRANSFER_QUOTE}" (Sec. 3). {res.method}. Lower is better for all three.'
    return t


def transfer_markdown(res: TransferResult) -> str:
    by = {d.metric: d for d in res.differences}
    lines = [f"# MI-GAN2: transfer from MI-GAN1 vs from scratch", "",
             f"Claim (paper, Sec. 3): \"{TRANSFER_QUOTE}\". Verdict: **{res.verdict}**.", "",
             f"Method: {res.method}.", "",
             "| metric | transfer [95% CI] | scratch [95% CI] | transfer - scratch [95% CI] | p | Holm p | verdict |",
             "|---|---|---|---|---|---|---|"]
    for m in TRANSFER_METRICS:
        d = by.get(m)
        lines.append(f"| {m} | {_ci(res.estimates.get('transfer', {}).get(m))} | "
                     f"{_ci(res.estimates.get('scratch', {}).get(m))} | "
                     + (f"{d.diff:.4g} [{d.ci_low:.4g}, {d.ci_high:.4g}] | {d.p:.3g} | {d.p_adjusted:.3g} | "
                        if d else " | | | ") + f"{res.metric_verdicts.get(m, '')} |")
    lines += ["", "| side | seed | fid | kid | focus_curve_l1 | focus peak | diversity | status |",
              "|---|---|---|---|---|---|---|---|"]
    for r in res.per_seed:
        lines.append(f"| {r['side']} | {r['seed']} | {r['fid']:.4g} | {r['kid']:.3g} | {r['focus_curve_l1']:.3f} | "
                     f"{_plane(r['focus_peak'])} | {r['diversity']:.2f} | {r['status']}"
                     + (f": {r['failure']}" if r["failure"] else "") + " |")
    return "\n".join(lines) + "\n"
