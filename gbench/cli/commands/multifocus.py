"""MI-GAN commands: ``gbench train-migan``, ``gbench sample-migan`` and ``gbench quality-multifocus``.

The library functions behind them (:func:`generators.mi_gan_train.train_migan`,
:func:`generators.mi_gan_train.sample_to_folder`, :func:`quality_multifocus`) can be called by
other commands (``gbench train-gen mi-gan``, ``gbench quality --multifocus``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gbench.cli.commands.common import DataSeedOpt, OverwriteOpt, ProfileOpt, SeedOpt, check_out_folder, console

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.

__all__ = ["register", "quality_multifocus"]


def register(app: typer.Typer) -> None:
    app.command("train-migan")(train_migan_cmd)
    app.command("sample-migan")(sample_migan_cmd)
    app.command("quality-multifocus")(quality_multifocus_cmd)


def _load(name: str, split: str, profile: str, seed: int, n: int | None) -> Any:
    from gbench.core.profiles import get_profile
    from gbench.data.resolve import load_stacks

    prof = get_profile(profile)
    if name.startswith("synthetic-cells"):
        from gbench.data.synthetic_cells import cell_type_of

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
    from gbench.core.fileio import write_json, write_text
    from gbench.core.observations import hash_test_set
    from gbench.core.provenance import provenance
    from gbench.core.records import records_from_dicts, save_records
    from gbench.data.multifocus import stack_array
    from gbench.metrics.multifocus import CONVENTIONS, evaluate_multifocus, get_extractor

    real_ds = _load(real, real_split, profile, data_seed, limit)
    fake_ds = _load(fake, fake_split, profile, data_seed, limit)
    real_arr = stack_array(real_ds, limit)
    fake_arr = stack_array(fake_ds, limit)
    ext = get_extractor(extractor, seed=seed, inception_weights=inception_weights)  # type: ignore[arg-type]
    res = evaluate_multifocus(real_arr, fake_arr, extractor=ext, kid_subsets=kid_subsets,
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
    from gbench.core.records import provenance_columns

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
    import pandas as pd

    from gbench.data.multifocus import plane_labels

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from gbench.core.fileio import atomic_path
    from gbench.data.multifocus import plane_labels
    from generators.mi_gan_train import write_stack_grid

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


# ------------------------------------------------------------------------------------------ commands


def train_migan_cmd(
    data: Annotated[str, typer.Option("--data", help="Stacks to train on: synthetic-cells:siha, synthetic-cells:cancer, multifocus:PATH or a folder.")] = "synthetic-cells:siha",
    out: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/mi-gan"),
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
    split: Annotated[str, typer.Option("--split", help="Split of --data (a flat folder is 'all').")] = "train",
    init_from: Annotated[Optional[Path], typer.Option("--init-from", help="Fine-tune a trained MI-GAN run (transfer learning, MI-GAN1 -> MI-GAN2).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoints in --out.")] = False,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Generator iterations per phase (default: the profile's).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Real items per critic update (default: the profile's).")] = None,
    n_train: Annotated[Optional[int], typer.Option("--n-train", help="Built-in training stacks (default: the profile's, migan.train_stacks / cancer_stacks).")] = None,
    n_critic: Annotated[Optional[int], typer.Option("--n-critic", help="Critic updates per generator update (default 5).")] = None,
    critic_norm: Annotated[Optional[str], typer.Option("--critic-norm", help="batch (paper), layer, instance or none (default: the profile's).")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="cpu, cuda, cuda:1 (default: CUDA when available).")] = None,
    overwrite: OverwriteOpt = False,
    steps_g2: Annotated[Optional[int], typer.Option("--steps-g2", help="Generator iterations of G2 (default: --steps, else the profile's).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="MI-GAN option KEY=VALUE (upsample, g2_arch, g2_l1, latent_channels, lr, ...; see generators/mi_gan.py); repeatable.")] = None,
) -> None:
    """Train MI-GAN (G1 then G2, independently, WGAN-GP) on multi-focus cell stacks."""
    from gbench.core.options import check_device, check_positive, parse_set_options
    from gbench.core.profiles import get_profile
    from generators.mi_gan import MIGANConfig
    from generators.mi_gan_train import train_migan

    prof = get_profile(profile)
    for opt, value in (("--steps", steps), ("--steps-g2", steps_g2), ("--batch-size", batch_size),
                       ("--n-train", n_train), ("--n-critic", n_critic)):
        check_positive(opt, value)
    check_device("--device", device)
    overrides: dict[str, Any] = parse_set_options(set_, MIGANConfig, what="MI-GAN option")
    if n_critic is not None:
        overrides["n_critic"] = n_critic
    if critic_norm is not None:
        overrides["critic_norm"] = critic_norm
    check_out_folder(out, resume=resume, overwrite=overwrite)

    run = train_migan(data, out, profile=prof, seed=seed, data_seed=data_seed, split=split, init_from=init_from,
                      resume=resume, steps=steps, steps_g2=steps_g2, batch_size=batch_size, n_train=n_train,
                      device=device, **overrides)
    ph = run.record["phases"]
    for p in ("g1", "g2"):
        console.print(f"{p.upper()}: {ph[p].get('steps', 0)} steps, critic loss {ph[p].get('loss_d_first', float('nan')):.3g} -> "
                      f"{ph[p].get('loss_d_last', float('nan')):.3g}, {ph[p]['wall_time_s']:.1f} s on {ph[p]['device']}")
    console.print(f"wrote {run.model_path}, {run.out_dir / 'samples.png'}, {run.out_dir / 'run.json'}")


def sample_migan_cmd(
    run: Annotated[Path, typer.Argument(help="Trained MI-GAN run folder (or its mi-gan.pt).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the synthetic stacks (a multifocus dataset).")],
    n: Annotated[int, typer.Option("--n", help="Stacks to draw.")] = 16,
    fmt: Annotated[str, typer.Option("--format", help="npy, tif (multi-page) or png (a folder per stack).")] = "npy",
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Draw multi-focus stacks from a trained MI-GAN (z -> G1 -> I0 -> G2)."""
    from gbench.core.errors import DataError
    from gbench.core.options import check_positive
    from gbench.core.profiles import get_profile
    from gbench.data.multifocus import stack_array
    from gbench.data.resolve import load_stacks
    from generators.mi_gan_train import sample_to_folder, write_stack_grid

    get_profile(profile)
    check_positive("--n", n)
    if fmt not in ("npy", "tif", "png"):
        raise ValueError(f"--format must be npy, tif or png, got {fmt!r}")
    if not run.exists():
        raise DataError(run, "no such MI-GAN run folder or mi-gan.pt")
    check_out_folder(out, overwrite=overwrite, resumable=False)

    folder = sample_to_folder(run, out, n, seed=seed, fmt=fmt)  # type: ignore[arg-type]
    grid = write_stack_grid(folder / "grid.png", stack_array(load_stacks(folder, split="all"), 8))
    console.print(f"wrote {n} stacks to {folder} (grid: {grid})")


def quality_multifocus_cmd(
    real: Annotated[str, typer.Option("--real", help="Real stacks: synthetic-cells:TYPE, multifocus:PATH or a folder.")],
    fake: Annotated[str, typer.Option("--fake", help="Synthetic stacks (e.g. from gbench sample-migan).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for records, summary and figures.")] = None,
    real_split: Annotated[str, typer.Option("--real-split", help="Split of --real.")] = "test",
    fake_split: Annotated[str, typer.Option("--fake-split", help="Split of --fake.")] = "all",
    extractor: Annotated[str, typer.Option("--extractor", help="random-conv (offline; not comparable with published FID), inception (torch-fidelity's FID network), timm:NAME or inception-v3 (torchvision).")] = "random-conv",
    inception_weights: Annotated[Optional[Path], typer.Option("--inception-weights", help="Local weights file of the extractor (needed for inception-v3 and timm:NAME; inception: default the torch-fidelity cache).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="At most this many stacks per side.")] = None,
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Per-plane FID/KID, focus curve and inter-plane SSIM of synthetic vs real multi-focus stacks."""
    from rich.table import Table

    from gbench.core.options import check_positive
    from gbench.core.profiles import get_profile

    get_profile(profile)
    check_positive("--limit", limit)
    if extractor not in ("random-conv", "inception-v3", "inception") and not extractor.startswith("timm:"):
        raise ValueError(f"--extractor must be random-conv, inception, timm:NAME or inception-v3, got {extractor!r}")
    if out is not None:
        check_out_folder(out, overwrite=overwrite, resumable=False)

    res = quality_multifocus(real, fake, out, profile=profile, seed=seed, data_seed=data_seed, real_split=real_split,
                             fake_split=fake_split,
                             extractor=extractor, inception_weights=inception_weights, limit=limit)
    r = res["result"]
    t = Table(title=f"multi-focus: {fake} vs {real} ({r.extractor})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for row in r.rows:
        if row["plane"] == "all":
            t.add_row(row["metric"], f"{row['value']:.4g}")
    t.caption = r.rows[0]["note"] if r.rows else ""
    console.print(t)
    if res["files"]:
        console.print(f"wrote {', '.join(str(p) for p in res['files'])}")
