"""Multi-focus evaluation: synthetic stacks against real ones (``gbench quality-multifocus``).

:func:`quality_multifocus` loads both sides, computes per-plane FID/KID, focus curves and
inter-plane SSIM (:func:`gbench.metrics.multifocus.evaluate_multifocus`), turns them into records
and (with ``out``) writes ``records.csv``, ``summary.json``, ``summary.md`` and the figures.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gbench.core.fileio import atomic_path, write_json, write_text
from gbench.core.observations import hash_test_set
from gbench.core.profiles import get_profile
from gbench.core.provenance import provenance
from gbench.core.records import provenance_columns, records_from_dicts, save_records
from gbench.data.multifocus import plane_labels, stack_array
from gbench.data.resolve import load_stacks
from gbench.data.synthetic_cells import cell_type_of
from gbench.metrics.multifocus import CONVENTIONS, evaluate_multifocus, get_extractor
from gbench.generators.mi_gan_train import write_stack_grid

__all__ = ["quality_multifocus", "load_stack_set"]


def load_stack_set(name: str, split: str, profile: str, seed: int, n: int | None) -> Any:
    """Stacks of ``name`` (a built-in ``synthetic-cells:TYPE`` at the profile's size and count, or a
    stack folder / ``multifocus:PATH``); ``seed`` draws a built-in set."""
    prof = get_profile(profile)
    if name.startswith("synthetic-cells"):
        train_n = prof.migan_count(cell_type_of(name))
        count = n if n is not None else (max(2, train_n // 4) if split == "test" else train_n)
        return load_stacks(name, split=split, n=count, size=prof.migan.image_size, planes=prof.migan.planes, seed=seed)  # type: ignore[arg-type]
    return load_stacks(name, split=split)  # type: ignore[arg-type]


def quality_multifocus(real: str, fake: str, out: str | Path | None = None, *, profile: str = "demo", seed: int = 0,
                       real_split: str = "test", fake_split: str = "all", extractor: str = "random-conv",
                       inception_weights: str | Path | None = None, limit: int | None = None,
                       kid_subsets: int = 100, kid_subset_size: int = 1000, model: str = "mi-gan",
                       progress: bool = True, data_seed: int = 0) -> dict[str, Any]:
    """Evaluate synthetic stacks against real ones and (with ``out``) write the results.

    Args:
        real: real stacks: ``synthetic-cells:TYPE``, ``multifocus:PATH`` or a folder.
        fake: synthetic stacks (a folder written by ``gbench sample-migan``, or any stack source).
        out: folder for ``records.csv`` (+ manifest), ``summary.json``, ``summary.md``,
            ``focus_curve.png``, ``interplane_ssim.png``, ``real.png``, ``fake.png``; None writes nothing.
        profile, seed: recorded; ``seed`` also seeds the extractor and the KID subsets.
        data_seed: draws built-in stacks (``synthetic-cells``) on either side.
        real_split, fake_split: splits to read (a flat folder is ``all``).
        extractor: ``random-conv`` (offline default; not comparable with published FID) or
            ``inception-v3`` (needs ``inception_weights``).
        limit: use at most this many stacks per side.
        kid_subsets, kid_subset_size: KID subsets.
        model: name recorded in the ``model`` column.
        progress: progress messages.

    Records: ``n_images`` is the number of real stacks (the test set), ``n_seeds`` 1, ``test_set``
    the hash of the real stacks. FID, KID and the other distribution distances are set
    statistics: they have no per-image value to resample, so their ``ci_low``/``ci_high`` stay
    empty and ``ci_method`` says so; the per-stack means (focus curves, inter-plane SSIM of one
    side) carry no interval either (``ci_method`` empty).

    Returns:
        ``{"records": DataFrame, "result": MultifocusResult, "files": [...]}``.
    """
    real_ds = load_stack_set(real, real_split, profile, data_seed, limit)
    fake_ds = load_stack_set(fake, fake_split, profile, data_seed, limit)
    real_arr = stack_array(real_ds, limit)
    fake_arr = stack_array(fake_ds, limit)
    ext = get_extractor(extractor, seed=seed, inception_weights=inception_weights)  # type: ignore[arg-type]
    res = evaluate_multifocus(fake_arr, real_arr, extractor=ext, kid_subsets=kid_subsets,
                              kid_subset_size=kid_subset_size, seed=seed, progress=progress)
    prov = provenance(profile=profile, seed=seed, data_seed=data_seed)
    names = list(getattr(real_ds, "names", []))[:len(real_arr)]
    if len(names) != len(real_arr):
        names = [f"stack{i:05d}" for i in range(len(real_arr))]
    test_set = hash_test_set((n, a, b"") for n, a in zip(names, real_arr))
    rows = [{"kind": "multifocus", "model": model, "train_set": "R", "profile": profile, "seed": seed,
             "dataset": str(real), "split": real_split, "data_seed": data_seed, "synthetic": str(fake),
             "plane": r["plane"], "metric": r["metric"], "value": r["value"], "n": r["n"],
             "n_images": len(real_arr), "n_seeds": 1, "test_set": test_set,
             "ci_method": _SET_STATISTIC if _is_set_statistic(r["metric"]) else "",
             "extractor": r["extractor"], "note": r["note"]}
            for r in res.rows]
    pc = provenance_columns(prov, CONVENTIONS)
    df = records_from_dicts([{**r, **pc} for r in rows])
    files: list[Path] = []
    if out is not None:
        out = Path(out)
        files.append(save_records(df, out / "records.csv"))
        summary = {
            "real": str(real), "fake": str(fake), "real_split": real_split, "fake_split": fake_split,
            "extractor": res.extractor, "comparable_with_published_fid": res.comparable_with_published_fid,
            "note": getattr(ext, "note", ""), **res.info,
            "overall": {r["metric"]: r["value"] for r in res.rows if r["plane"] == "all"},
            "focus_curve_real_mean": res.focus_real.mean(0).tolist(),
            "focus_curve_fake_mean": res.focus_fake.mean(0).tolist(),
            "conventions": CONVENTIONS, "provenance": prov,
        }
        files.append(write_json(out / "summary.json", summary))
        files.append(write_text(out / "summary.md", _markdown(res, real, fake, profile, seed, ext)))
        files += _figures(res, real_arr, fake_arr, out)
    return {"records": df, "result": res, "files": files}


_SET_STATISTIC = "set statistic: no per-image CI"


def _is_set_statistic(metric: str) -> bool:
    """FID, KID and the distances between the two sides' distributions are computed from whole sets."""
    return metric in ("fid", "kid", "kid_std", "focus_curve_l1", "focus_peak_real", "focus_peak_fake") \
        or metric.endswith("_w1")


def _markdown(res: Any, real: str, fake: str, profile: str, seed: int, ext: Any) -> str:
    labels = plane_labels(res.info["planes"])
    by = {(r["metric"], r["plane"]): r["value"] for r in res.rows}
    table = pd.DataFrame({
        "plane": labels + ["all"],
        "FID": [by.get(("fid", p)) for p in labels + ["all"]],
        "KID": [by.get(("kid", p)) for p in labels + ["all"]],
        "focus real": [by.get(("focus_real", p)) for p in labels] + [None],
        "focus synthetic": [by.get(("focus_fake", p)) for p in labels] + [None],
    })
    overall = pd.DataFrame([(r["metric"], r["value"]) for r in res.rows
                            if r["plane"] == "all" and r["metric"] not in ("fid", "kid")], columns=["metric", "value"])
    return (f"# Multi-focus evaluation\n\nreal `{real}` ({res.info['n_real']} stacks) vs synthetic `{fake}` "
            f"({res.info['n_fake']} stacks); profile `{profile}`, seed {seed}\n\n"
            f"Features: {res.extractor}. **{getattr(ext, 'note', '')}**\n\n"
            + table.to_markdown(index=False, floatfmt=".4g") + "\n\n" + overall.to_markdown(index=False, floatfmt=".4g") + "\n")


def _figures(res: Any, real: Any, fake: Any, out: Path) -> list[Path]:
    import matplotlib  # lazy: matplotlib: the Agg backend is chosen first

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib: the Agg backend is chosen first

    labels = plane_labels(res.info["planes"])
    files = []
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for curve, name in ((res.focus_real, "real"), (res.focus_fake, "synthetic")):
        norm = curve / np.maximum(curve.max(1, keepdims=True), 1e-12)
        m, s = norm.mean(0), norm.std(0)
        ax.plot(x, m, marker="o", label=name)
        ax.fill_between(x, m - s, m + s, alpha=0.2)
    ax.set_xticks(x, labels)
    ax.set_ylabel("variance of Laplacian / stack max")
    ax.set_title("Focus curve (mean ± sd)")
    ax.legend()
    fig.tight_layout()
    with atomic_path(out / "focus_curve.png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    files.append(out / "focus_curve.png")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    pairs = [f"{a}/{b}" for a, b in zip(labels[:-1], labels[1:])]
    ax.boxplot([res.ssim_real[:, k] for k in range(len(pairs))], positions=np.arange(len(pairs)) - 0.18, widths=0.3)
    ax.boxplot([res.ssim_fake[:, k] for k in range(len(pairs))], positions=np.arange(len(pairs)) + 0.18, widths=0.3,
               boxprops={"color": "tab:orange"}, medianprops={"color": "tab:orange"})
    ax.set_xticks(np.arange(len(pairs)), pairs, rotation=60, fontsize=7)
    ax.set_ylabel("SSIM of successive planes")
    ax.set_title("Inter-plane consistency (black: real, orange: synthetic)")
    fig.tight_layout()
    with atomic_path(out / "interplane_ssim.png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    files.append(out / "interplane_ssim.png")
    files.append(write_stack_grid(out / "real.png", real[:6]))
    files.append(write_stack_grid(out / "fake.png", fake[:6]))
    return files
