"""Image quality of a trained generator, the Sharp-GAN Table 1 protocol.

The generator is run on the real test split's own instance maps: every test tile is cut into
grid crops of the profile's size (``gbench.data.patches.grid_crops``, the last crop of a row or
column flush with the tile's edge), each crop's instance map is turned into the generator's
conditioning map, and the synthetic crop is scored against the real crop with
``gbench.metrics.quality.quality_metrics`` (SSIM, FSIM, GMSD, NRMSE; their conventions are in
``gbench.metrics.quality.CONVENTIONS``). The synthetic image is quantized to 8 bits first, as a
written PNG would be, so scoring saved images gives the same numbers.

Every crop row names its source ``tile``: the grid crops of one tile are one resampling unit for
confidence intervals and paired tests (``gbench.pipelines.quality.quality_results``). Each row also
carries the test-set hash (``test_set``, :func:`gbench.data.resolve.split_hash` of the tiles) and the
generator's failure check on its outputs (``failure``: ``gbench.metrics.failures.output_failure`` on the
first batch of generated crops; ``""`` when it looks sane).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from gbench import generators
from gbench.core.fileio import write_text
from gbench.core.metric_specs import metric_names
from gbench.core.observations import hash_test_set, save_observations, save_replicates
from gbench.core.profiles import Profile, as_profile
from gbench.core.provenance import provenance as collect_provenance
from gbench.core.records import save_records
from gbench.data.patches import grid_crops
from gbench.data.resolve import resolve_dataset, split_hash
from gbench.engine import load_checkpoint, select_device
from gbench.metrics.failures import output_failure
from gbench.metrics.quality import quality_metrics
from gbench.pipelines.diagnostics import Diagnostics, distribution_records, replicate_frame, write_diagnostics
from gbench.pipelines.quality import quality_results
from gbench.pipelines.synthesis import file_sha256

__all__ = ["evaluate_generator", "QUALITY_METRICS", "generator_quality", "GeneratorQuality", "score_generators",
           "GeneratorsQuality", "pair_checkpoints"]

QUALITY_METRICS: tuple[str, ...] = metric_names("quality")
#: ``--checkpoint`` values that mean "no checkpoint" (a frozen generator's default weights).
NO_CHECKPOINT = ("none", "-")


def pair_checkpoints(names: Sequence[str], checkpoints: Sequence[str | Path | None]) -> list[str | None]:
    """One checkpoint per generator: ``checkpoints`` in order, ``none``/``-`` meaning None; with no
    checkpoints at all, frozen generators get None (their default weights).

    Raises:
        ValueError: counts that do not match, or a generator trained by gbench left without one.
    """
    if not checkpoints and names:
        checkpoints = ["none"] * len(names)
    if len(checkpoints) != len(names):
        raise ValueError(f"give one --checkpoint per --generator ({len(names)} generators, {len(checkpoints)} "
                         "checkpoints; 'none' for a frozen generator's default weights)")
    out: list[str | None] = []
    for name, ckpt in zip(names, checkpoints):
        value = None if ckpt is None or str(ckpt).lower() in NO_CHECKPOINT else str(ckpt)
        if value is None and not generators.is_frozen(name):
            raise ValueError(f"--generator {name}: needs --checkpoint (checkpoints/last.pt written by gbench train-gen)")
        out.append(value)
    return out


def evaluate_generator(
    name: str,
    checkpoint: str | Path | None,
    dataset: str | Any,
    profile: Profile | str = "demo",
    seed: int = 0,
    *,
    data_seed: int = 0,
    split: str = "test",
    metrics: Sequence[str] = QUALITY_METRICS,
    batch_size: int | None = None,
    device: str | None = None,
    progress: bool = True,
    observe: Any = None,
) -> list[dict[str, Any]]:
    """Score generator ``name`` on the real test crops' own maps.

    Args:
        name: generator name (must match the checkpoint).
        checkpoint: ``last.pt`` written by ``gbench train-gen``; for a frozen plugin generator its
            own weights file, or None (its default weights). A frozen generator's every output
            batch is checked (:func:`gbench.generators.frozen.check_output`): a bad one raises
            ValueError before anything is scored or written.
        dataset: dataset name/path (``gbench.data.resolve.resolve_dataset``) or a loaded ``Dataset``.
        profile: a :class:`~gbench.core.profiles.Profile` or its name; its ``evaluation`` section
            gives the crop size and the default batch size.
        seed: the generator's training seed, recorded (the generator runs in eval mode, so its
            output does not depend on it).
        data_seed: seed of a built-in dataset (which test tiles exist).
        split: which split to score (the paper: ``test``).
        metrics: quality metric names.
        batch_size: crops per generator / metric batch.
        device: None picks CUDA when available.
        progress: progress bar.
        observe: ``observe(names, real, fake, inst)`` sees every batch of crops: uint8
            ``(N, H, W, 3)`` real and synthetic (as scored), instance maps ``(N, H, W)`` (e.g.
            :meth:`gbench.pipelines.diagnostics.Diagnostics.observe`).

    Returns:
        One record (a flat dict) per crop, in tile then grid order::

            {"name": "<tile>@y<Y>x<X>", "tile": str, "y": int, "x": int, "size": int,
             "generator": str, "conditioning": str, "checkpoint_sha256": str,
             "dataset": str, "split": str, "profile": str, "seed": int, "data_seed": int,
             "test_set": str, "failure": str,
             "ssim": float, "fsim": float, "gmsd": float, "nrmse": float}

        (one key per requested metric). ``pandas.DataFrame(records)`` has the columns of
        ``gbench.pipelines.quality.score_pairs`` (``name`` + metrics) plus the context columns, so
        ``gbench.pipelines.quality.summarize_scores`` applies to it directly.
    """

    prof = as_profile(profile)
    if isinstance(dataset, (str, Path)):
        ds = resolve_dataset(str(dataset), split, prof, data_seed)
        test_set = split_hash(str(dataset), split, prof, data_seed, dataset=ds)
    else:
        ds = dataset
        test_set = hash_test_set((s.name, s.image, s.instances) for s in ds)
    size = prof.evaluation.crop
    bs = int(batch_size or prof.evaluation.batch_size)
    dev = select_device(device)
    module = generators.load(checkpoint, name, dev)
    sha = file_sha256(checkpoint) if checkpoint is not None else ""
    context = {"generator": name, "conditioning": module.conditioning, "checkpoint_sha256": sha,
               "dataset": getattr(ds, "name", str(dataset)), "split": split, "profile": prof.name, "seed": seed,
               "data_seed": data_seed, "test_set": test_set}
    records: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], np.ndarray, np.ndarray]] = []
    checked: list[torch.Tensor] = []  # generated crops for the failure check (up to 16, different inputs)

    def flush() -> None:
        if not pending:
            return
        cond = torch.from_numpy(np.stack([module.condition_map(inst) for _, _, inst in pending])).to(dev)
        fake = module.generate(cond).float().cpu()
        fake8 = (fake.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
        if sum(len(c) for c in checked) < 16:
            checked.append(fake[: 16 - sum(len(c) for c in checked)])
        real8 = torch.from_numpy(np.stack([img for _, img, _ in pending])).permute(0, 3, 1, 2).contiguous()
        values = quality_metrics(fake8, real8, tuple(metrics))
        if observe is not None:
            observe([rec["name"] for rec, _, _ in pending], real8.permute(0, 2, 3, 1).numpy(),
                    fake8.permute(0, 2, 3, 1).contiguous().numpy(), np.stack([inst for _, _, inst in pending]))
        for i, (rec, _, _) in enumerate(pending):
            records.append({**rec, **{m: float(values[m][i]) for m in metrics}})
        pending.clear()


    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"quality {name}", total=len(ds))
        for sample in ds:
            for img, inst, (y, x) in grid_crops(sample.image, sample.instances, size):
                rec = {"name": f"{sample.name}@y{y}x{x}", "tile": sample.name, "y": int(y), "x": int(x), "size": size,
                       **context}
                pending.append((rec, img, inst))
                if len(pending) >= bs:
                    flush()
            bar.advance(task)
        flush()
    if not records:
        raise ValueError(f"no {split} crops to score in {context['dataset']}")
    failure = output_failure(torch.cat(checked).numpy())
    for rec in records:
        rec["failure"] = failure
    return records


def checkpoint_seed(checkpoint: str | Path | None, default: int) -> int:
    """The training seed stored in a ``gbench train-gen`` checkpoint (``default`` without a
    checkpoint, e.g. a frozen generator's default weights, or for a checkpoint without one)."""
    if checkpoint is None:
        return default
    stored = load_checkpoint(checkpoint).get("seed")
    return int(stored) if isinstance(stored, int) and not isinstance(stored, bool) else default


@dataclass
class GeneratorQuality:
    """What :func:`generator_quality` found for one trained generator.

    Attributes:
        per_crop: one row per scored crop (:func:`evaluate_generator`).
        records: quality records with 95% confidence intervals (+ distribution records when the
            diagnostics computed them).
        observations: the per-crop values behind the intervals (a tile is one resampling unit).
        diagnostics: :meth:`gbench.pipelines.diagnostics.Diagnostics.finish` output, or None.
    """

    per_crop: Any
    records: Any
    observations: Any
    diagnostics: dict[str, Any] | None = None


def generator_quality(name: str, checkpoint: str | Path | None, dataset: str, profile: str | Profile, seed: int = 0, *,
                      data_seed: int = 0, metrics: Sequence[str] = QUALITY_METRICS, batch_size: int | None = None,
                      progress: bool = True, diagnostics: Diagnostics | None = None,
                      failure: Callable[[str], str] | None = None) -> GeneratorQuality:
    """The quality stage of one trained generator (Sharp-GAN Table 1 protocol), the one used by
    ``gbench quality --generator`` and ``gbench reproduce``'s ``quality-<generator>`` stages.

    :func:`evaluate_generator` on the test split of ``dataset``, then records and observations
    (:func:`gbench.pipelines.quality.quality_results`, the crops of one tile one resampling unit).

    Args:
        name, checkpoint, dataset, profile, seed, data_seed, metrics, batch_size, progress: as
            :func:`evaluate_generator`; ``seed`` is replaced by the checkpoint's own training seed
            when the checkpoint stores one (:func:`checkpoint_seed`).
        diagnostics: a :class:`gbench.pipelines.diagnostics.Diagnostics` that sees every crop;
            its distribution metrics become records too.
        failure: ``failure(output_check) -> str``: the failed check to record given the
            near-constant-output check of the scored crops (reproduce adds the training run's
            own); default: the output check.
    """
    prof = as_profile(profile)
    # records carry the checkpoint's training seed (a frozen generator's weights file is its own format)
    seed = seed if generators.is_frozen(name) else checkpoint_seed(checkpoint, seed)
    active = diagnostics is not None and diagnostics.active
    rows = evaluate_generator(name, checkpoint, dataset, prof, seed, data_seed=data_seed, metrics=metrics,
                              batch_size=batch_size, progress=progress,
                              observe=diagnostics.observe if active else None)  # type: ignore[union-attr]
    per_crop = pd.DataFrame(rows)
    output_check = str(per_crop["failure"].iloc[0])
    keys: dict[str, Any] = {
        "train_set": "R", "profile": prof.name, "seed": seed, "dataset": str(per_crop["dataset"].iloc[0]),
        "split": "test", "test_set": str(per_crop["test_set"].iloc[0]),
        "provenance": collect_provenance(profile=prof.name, seed=seed, data_seed=data_seed),
        "failure": failure(output_check) if failure is not None else output_check,
    }
    recs, obs = quality_results(per_crop, name, metrics=metrics, unit_key="tile", data_seed=data_seed, **keys)
    found = diagnostics.finish() if active else None  # type: ignore[union-attr]
    if found is not None and found["distribution"] is not None:
        recs = pd.concat([recs, distribution_records(found["distribution"], name, data_seed=data_seed, **keys)],
                         ignore_index=True)
    return GeneratorQuality(per_crop, recs, obs, found)


@dataclass
class GeneratorsQuality:
    """What :func:`score_generators` found: one table's records and observations, each generator's
    :class:`GeneratorQuality`, and the files written (empty without ``out``)."""

    records: Any
    observations: Any
    per_generator: dict[str, GeneratorQuality]
    files: list[Path]
    replicates: Any = None  # set-statistic bootstrap replicates (with --extractor), for paired FID/KID tests


def score_generators(names: Sequence[str], checkpoints: Sequence[str | Path | None], dataset: str, profile: str | Profile,
                     seed: int = 0, *, out: str | Path | None = None, data_seed: int = 0,
                     metrics: Sequence[str] = QUALITY_METRICS, batch_size: int | None = None, extractor: Any = None,
                     stain: bool = False, conventions: bool = False, kid_subsets: int = 100,
                     kid_subset_size: int = 1000, progress: bool = True) -> GeneratorsQuality:
    """``gbench quality --generator``: :func:`generator_quality` for each (name, checkpoint), one
    record file and the per-crop observations behind its confidence intervals.

    Args:
        extractor, stain, conventions, kid_subsets, kid_subset_size: the
            :class:`gbench.pipelines.diagnostics.Diagnostics` run beside the paired metrics.
        out: folder for ``per_crop.csv``, ``records.csv``, ``observations.csv`` and the
            diagnostics' files (prefixed by the generator name); None writes nothing.
    """
    found: dict[str, GeneratorQuality] = {}
    files: list[Path] = []
    for name, ckpt in zip(names, checkpoints):
        diag = Diagnostics(extractor, stain=stain, conventions=conventions, metrics=metrics, batch_size=batch_size,
                           kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)
        found[name] = res = generator_quality(name, ckpt, dataset, profile, seed, data_seed=data_seed,
                                              metrics=metrics, batch_size=batch_size, progress=progress,
                                              diagnostics=diag)
        if res.diagnostics is not None and out is not None:
            files += write_diagnostics(res.diagnostics, out, prefix=f"{name}_")
    recs = pd.concat([r.records for r in found.values()], ignore_index=True)
    obs = pd.concat([r.observations for r in found.values()], ignore_index=True)
    reps = [replicate_frame(r.diagnostics["distribution"], name, train_set="R", profile=as_profile(profile).name,
                            seed=seed, dataset=str(r.per_crop["dataset"].iloc[0]), split="test", data_seed=data_seed)
            for name, r in found.items() if r.diagnostics is not None and r.diagnostics.get("distribution") is not None]
    replicates = pd.concat([x for x in reps if x is not None], ignore_index=True) if any(
        x is not None for x in reps) else None
    if out is not None and replicates is not None:
        files.append(save_replicates(replicates, Path(out) / "records.csv"))
    if out is not None:
        out = Path(out)
        per_crop = pd.concat([r.per_crop for r in found.values()], ignore_index=True)
        written = [write_text(out / "per_crop.csv", per_crop.to_csv(index=False, float_format="%.10g")),
                   save_records(recs, out / "records.csv")]
        save_observations(obs, out / "records.csv")
        files = [*written, out / "observations.csv", *files]
    return GeneratorsQuality(recs, obs, found, files, replicates)
