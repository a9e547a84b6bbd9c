"""``gbench reproduce sharp-gan``: the whole Sharp-GAN pipeline, stage by stage, cached.

Stages (each a :class:`gbench.pipelines.stages.Stage` keyed by a hash of its config and inputs, so a
rerun skips what is done, a changed config reruns only what depends on it, and a killed run
continues where it stopped — training stages resume from their own checkpoints):

1. ``train-<generator>``: GAN-binary, GAN-DIST and Sharp-GAN on the real training split, and the
   ``mask-paint`` floor (the training split's mean nucleus and background colours, one pass):
   Table 1's "did training do anything" row; it draws no synthetic set.
2. ``quality-<generator>``: Table 1 protocol (``gbench.pipelines.generator_eval.generator_quality``, the
   quality stage ``gbench quality --generator`` runs too): the
   generator is run on the real test split's own maps and scored with SSIM, FSIM, GMSD, NRMSE;
   records with 95% confidence intervals and per-crop observations (the crops of one tile are
   one resampling unit); a generator whose outputs are near-constant or whose losses went
   NaN/inf is recorded as ``failed``.
3. ``synthesize``: Sharp-GAN draws the synthetic set once, as many images as the profile's
   largest set (S10k); S3k reads the first images of the same set (sample k depends only on
   the seed and k, so S3k is a subset of S10k, as the paper's two sets could be).
   ``synthesize-<generator>``: every generator beyond the paper's four (a plugin's, e.g.
   ``ddpm``) draws its own copy of each paper set asked for (``S3k-ddpm``), and every training
   set with paper parts gets a twin reading it (``R+S3k`` -> ``R+S3k-ddpm``): Table 2 rows of
   both generators, trained and tested alike.
4. ``segment-<arch>-<train set>-seed<k>``: Table 2 protocol (``gbench.pipelines.segmentation_grid.run_cell``),
   and ``segment-floor``: the floor segmenter (no training, seconds:
   ``gbench.pipelines.segmentation_grid.run_floor``) on the same test images, Table 2's floor row.
5. the report folder (``reports.report.write_report``): tables in every format, ours beside the
   paper's, the paper's claims checked, figures, ``report.html``, ``manifest.json``.

Seeds: ``seed`` trains the generators and draws the synthetic set; ``data_seed`` draws a built-in
dataset (train and test tiles); ``seeds`` are the segmentation *training* seeds only, so every
cell of Table 2 (and Table 1) is tested on the same images, and every record carries the same
``test_set`` hash. ``records.csv`` and ``observations.csv`` (per-image values behind every
confidence interval and paired test) are written side by side.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.table import Table

from gbench import generators as generator_registry
from gbench.core.fileio import write_text
from gbench.core.observations import load_observations, save_observations
from gbench.core.profiles import Profile, as_profile
from gbench.core.records import load_records, save_records
from gbench.data.patches import grid_crops
from gbench.data.resolve import resolve_dataset
from gbench.metrics.failures import generator_failure
from gbench.pipelines.executor import Task, make_executor
from gbench.pipelines.generator_eval import generator_quality
from gbench.pipelines.segmentation_grid import run_cell, run_floor
from gbench.segmentation.floor import FLOOR_MODEL as FLOOR_SEGMENTER
from gbench.segmentation.floor import FloorConfig
from gbench.pipelines.stages import Stage, StageCache
from gbench.pipelines.synthesis import synthesize
from gbench.generators.train import train_generator
from gbench.reports.figures import sample_grid
from gbench.reports.report import write_report
from gbench.segmentation.sets import SyntheticSources, parse_train_spec

__all__ = ["reproduce_sharp_gan", "ReproduceResult", "GENERATORS", "ARCHS", "TRAIN_SETS"]

GENERATORS: tuple[str, ...] = ("mask-paint", "gan-binary", "gan-dist", "sharp-gan")
ARCHS: tuple[str, ...] = ("segnet", "unet")
TRAIN_SETS: tuple[str, ...] = ("R", "S3k", "R+S3k", "S10k", "R+S10k")
SYNTH_GENERATOR = "sharp-gan"


@dataclass
class ReproduceResult:
    out: Path
    records: Any
    report: dict[str, Any]
    stages: list[dict[str, Any]]
    seconds: float


def _segment_stage(folder: Path, arch: str, train_set: str, k: int, sources: Any, *, data: Any, prof: Any,
                   progress: bool, data_seed: int) -> dict[str, Any]:
    """One segmentation cell as a stage: train and score it into ``folder``; its outputs are the
    cell's records and observations."""
    row = run_cell(arch=arch, train=train_set, data=data, profile=prof, seed=k, out=folder, synthetic_dir=sources,
                   resume=True, progress=progress, data_seed=data_seed)
    cell = Path(row["run_dir"]).relative_to(folder)
    return {"outputs": [str(cell / "records.csv"), str(cell / "observations.csv")],
            "pq": row.get("pq_mean"), "status": row.get("status", "ok")}


def _stage_slug(train_set: str) -> str:
    """``R+S3k`` -> ``R-and-S3k`` (stage folder names take letters, digits, '-', '_', '.')."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", train_set.replace("+", "-and-"))


def _sample_grid(checkpoints: dict[str, Path | None], data: str, prof: Profile, data_seed: int, path: Path,
                 count: int = 4) -> Path:
    """Figure: the first ``count`` test crops, one row each: input map, real, each generator."""


    test = resolve_dataset(data, "test", prof, data_seed)
    crops: list[tuple[np.ndarray, np.ndarray]] = []
    for sample in test:
        for image, inst, _ in grid_crops(sample.image, sample.instances, prof.evaluation.crop):
            crops.append((image, inst))
            if len(crops) == count:
                break
        if len(crops) == count:
            break
    generated: dict[str, list[np.ndarray]] = {}
    inputs: list[np.ndarray] = []
    for name, ckpt in checkpoints.items():
        module = generator_registry.load(ckpt, name)
        cond = np.stack([module.condition_map(inst) for _, inst in crops])
        if not inputs or module.conditioning == "distance-map":
            inputs = list(cond[:, 0])
        with torch.no_grad():
            fake = module.generate(torch.from_numpy(cond)).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        generated[name] = [np.round(f * 255).astype(np.uint8) for f in fake]
    return sample_grid(inputs, [img for img, _ in crops], generated, path, input_label="distance map")


def _generator_failure(train_dir: Path, output_check: str) -> str:
    """The failed check of a trained generator: the ``failure`` its ``run.json`` records (a NaN/inf
    loss that stopped training, near-constant outputs on training maps), else NaN/inf in its loss
    history (``history.csv`` of its training folder), else ``output_check`` (the
    near-constant-output check of the quality stage)."""



    run_json = train_dir / "run.json"
    if run_json.is_file():
        recorded = json.loads(run_json.read_text(encoding="utf-8")).get("failure") or ""
        if recorded:
            return f"training: {recorded}"
    history = train_dir / "history.csv"
    if history.is_file():
        msg = generator_failure(history=pd.read_csv(history))
        if msg:
            return msg
    return output_check


def _dataset_inputs(data: str) -> tuple[Path, ...]:
    """A dataset folder enters the stage keys by content; a built-in by its name (in the config)."""
    p = Path(data).expanduser()
    return (p,) if p.exists() else ()


def reproduce_sharp_gan(data: str = "synthetic-he", profile: Profile | str = "demo", seed: int = 0,
                        out: str | Path = "runs/reproduce", seeds: Sequence[int] | None = None,
                        generators: Sequence[str] = GENERATORS, archs: Sequence[str] = ARCHS,
                        train_sets: Sequence[str] = TRAIN_SETS, gen_steps: int | None = None,
                        progress: bool = True, console: Any = None, data_seed: int = 0,
                        timings: Sequence[dict[str, Any]] = (), executor: str = "sequential",
                        jobs: int | None = None, address: str | None = None,
                        synthetic_sets: Mapping[str, str | Path] | None = None) -> ReproduceResult:
    """Run (or continue) the Sharp-GAN pipeline and write the report folder under ``out``.

    Args:
        data: real dataset (name or folder): its train split trains everything, its test split
            is scored.
        profile: a :class:`~gbench.core.profiles.Profile` or its name (``smoke`` / ``demo`` / ``paper``).
        seed: seed of the generators and the synthetic set.
        out: run folder: ``stages/`` (one folder per stage and key), ``records.csv``,
            ``observations.csv``, ``report/``.
        seeds: segmentation training seeds (default: the profile's ``seeds``); the test images
            do not change with them.
        generators: generators of Table 1 (Sharp-GAN is needed for the synthetic sets).
        archs: segmentation architectures of Table 2.
        train_sets: training sets of Table 2.
        gen_steps: generator optimiser steps (default: the profile's schedule).
        progress: progress bars.
        console: a rich console for stage lines and the final tables.
        data_seed: seed of a built-in dataset (which train and test tiles exist); part of every
            stage key.
        timings: steps timed before this call (``{"stage", "spent_s"}``; ``gbench demo``'s data
            preview), shown first in the closing time table.
        executor: ``sequential`` (default), ``local`` (independent stages at once in forked
            processes: one per visible GPU, ``jobs`` on the CPU) or ``ray`` (each stage a Ray task on
            a local instance with ``jobs`` CPUs, or the cluster at ``address``); see
            :mod:`gbench.pipelines.executor`. The records do not depend on it. With stages running
            at once, the time table's shares are of the summed stage times.
        jobs, address: the executor's job count and Ray address.
        synthetic_sets: the user's own synthetic sets, {name: folder} (``--synthetic NAME=DIR``),
            trained on beside the drawn one by ``train_sets`` naming them (``R+mine``,
            ``mine:500``); their folders' contents enter the stage keys.
    """


    t0 = time.perf_counter()
    console = console or Console()
    prof = as_profile(profile)
    seeds = tuple(prof.seeds if seeds is None else seeds)
    if not seeds:
        raise ValueError("reproduce needs at least one segmentation seed")
    user_sets = SyntheticSources.of(dict(synthetic_sets or {}))
    specs = {t: parse_train_spec(t, named=user_sets.names) for t in train_sets}
    needs_synth = any(p.paper for s in specs.values() for p in s.parts)  # S3k/S10k: drawn by Sharp-GAN
    if needs_synth and SYNTH_GENERATOR not in generators:
        raise ValueError(f"the synthetic training sets are drawn by {SYNTH_GENERATOR}: keep it in --generators")
    out = Path(out)
    cache = StageCache(out / "stages")
    # the runtime enters the keys by its precision only (workers, memory format: same numbers)
    base = {"data": data, "profile": {**prof.to_dict(), "runtime": prof.runtime.key()}, "seed": seed,
            "data_seed": data_seed}
    data_inputs = _dataset_inputs(data)
    stages: list[dict[str, Any]] = []
    trained: dict[str, Path] = {}
    train_runs: list[Path] = []  # their run.json: status, deviations from the paper
    tasks: list[Task] = []

    def add(name: str, make_stage: Any, fn: Any, after: Sequence[str] = ()) -> None:
        """A task running one stage through the cache; the stage (hence its key, which
        fingerprints its input folders) is built when the task starts, after ``after``."""

        def task() -> tuple[Any, float]:
            t_stage = time.perf_counter()
            res = cache.run(make_stage(), fn)
            return res, time.perf_counter() - t_stage

        tasks.append(Task(name, task, tuple(after)))

    def done(name: str, outcome: tuple[Any, float]) -> None:  # in this process, as each task ends
        res, spent = outcome
        verb = "cached" if res.skipped else "done"
        console.print(f"[dim]stage[/] {name}: {verb} ({res.seconds:.1f} s) -> {res.path}")
        # seconds: the stage's own run (the original one when cached); spent_s: this call's time
        stages.append({"stage": name, "key": res.key, "path": str(res.path), "skipped": res.skipped,
                       "seconds": round(res.seconds, 3), "spent_s": round(spent, 3)})
        if name.startswith("train-"):
            trained[name[len("train-"):]] = res.path / res.result["outputs"][0]
        if name == "synthesize" and not res.skipped and res.result.get("images_per_s"):
            console.print(f"synthesized {res.result['count']} images at {res.result['images_per_s']:.2f} images/s")

    def train_stage(name: str) -> Stage:
        return Stage(f"train-{name}", {**base, "generator": name, "steps": gen_steps}, data_inputs)

    # a training stage's folder depends only on its config and the dataset's files: found once
    # here (fingerprinting a real dataset hashes all its files), not again by each later stage
    # a frozen plugin generator (gbench.generators.frozen) is not trained: its quality stage runs it
    # with its default weights, keyed by where it comes from
    frozen = [name for name in generators if generator_registry.is_frozen(name)]
    train_dirs = {name: cache.path(train_stage(name)) for name in generators if name not in frozen}

    # 1-2: generators and Table 1 ------------------------------------------------------------
    for name in frozen:

        def frozen_quality(folder: Path, name: str = name) -> dict[str, Any]:
            found = generator_quality(name, None, data, prof, seed, data_seed=data_seed, progress=progress)
            write_text(folder / "per_crop.csv", found.per_crop.to_csv(index=False, float_format="%.10g"))
            save_records(found.records, folder / "records.csv")
            save_observations(found.observations, folder / "records.csv")
            return {"outputs": ["records.csv", "observations.csv", "per_crop.csv"], "crops": len(found.per_crop)}

        add(f"quality-{name}", lambda name=name: Stage(
            f"quality-{name}", {**base, "generator": name, "source": generator_registry.GENERATORS.source(name),
                                "split": "test"},
            data_inputs + tuple(p for p in (Path(generator_registry.GENERATORS.source(name)),) if p.is_file())),
            frozen_quality)

    for name in (n for n in generators if n not in frozen):

        def train(folder: Path, name: str = name) -> dict[str, Any]:
            res = train_generator(name, data, folder, profile=prof, seed=seed, resume=True, steps=gen_steps,
                                  progress=progress, data_seed=data_seed,
                                  keep_optimizer_state=False)  # the stage key fixes the steps: never extended
            return {"outputs": [str(Path(res.checkpoint).relative_to(folder))]}

        add(f"train-{name}", lambda name=name: train_stage(name), train)
        train_runs.append(train_dirs[name] / "run.json")

        def quality(folder: Path, name: str = name) -> dict[str, Any]:
            tr_path = train_dirs[name]
            found = generator_quality(name, trained[name], data, prof, seed, data_seed=data_seed, progress=progress,
                                      failure=lambda check: _generator_failure(tr_path, check))
            write_text(folder / "per_crop.csv", found.per_crop.to_csv(index=False, float_format="%.10g"))
            save_records(found.records, folder / "records.csv")
            save_observations(found.observations, folder / "records.csv")
            return {"outputs": ["records.csv", "observations.csv", "per_crop.csv"], "crops": len(found.per_crop)}

        add(f"quality-{name}", lambda name=name: Stage(f"quality-{name}", {**base, "generator": name, "split": "test"},
                                                       (train_dirs[name],)),
            quality, after=[f"train-{name}"])

    # 3: the synthetic set ---------------------------------------------------------------------
    count = max(c for _, c in prof.synthesis.counts)

    def synth_stage() -> Stage:
        return Stage("synthesize", {**base, "generator": SYNTH_GENERATOR, "count": count},
                     (train_dirs[SYNTH_GENERATOR],))

    synth_dirs: list[Path] = []  # the synthetic set's folder, once Sharp-GAN's stage is done

    def synth_dir() -> Path:
        if not synth_dirs:
            synth_dirs.append(cache.path(synth_stage()))
        return synth_dirs[0]

    if needs_synth:

        def synth(folder: Path) -> dict[str, Any]:
            res = synthesize(SYNTH_GENERATOR, trained[SYNTH_GENERATOR], count, folder / "S", seed=seed, profile=prof,
                             data=data, progress=progress, data_seed=data_seed)
            return {"outputs": ["S/manifest.csv"], "count": count, "images_per_s": res.images_per_s}

        add("synthesize", synth_stage, synth, after=[f"train-{SYNTH_GENERATOR}"])

    # 3b: the same sets drawn by every generator beyond the paper's (a plugin's DDPM, say): its own
    # copy of each paper set asked for, named ``<set>-<generator>`` (``S3k-ddpm``), and a twin of
    # each training set with paper parts reading it (``R+S3k`` -> ``R+S3k-ddpm``), so Table 2 holds
    # the R+S rows of both, trained and tested alike (reports.claims compares them when both exist)
    tokens = sorted({p.token for s in specs.values() for p in s.parts if p.paper})
    contenders = [g for g in generators if g not in GENERATORS] if tokens else []
    twins: dict[str, tuple[str, str]] = {}  # twin training set -> (generator, the paper's training set)
    for g in contenders:
        for t in train_sets:
            if any(p.paper for p in specs[t].parts):
                twins["+".join(f"{p.token}-{g}" if p.paper else p.token for p in specs[t].parts)] = (g, t)

    def contender_stage(g: str) -> Stage:
        frozen_source = {} if g in train_dirs else {"source": generator_registry.GENERATORS.source(g)}
        return Stage(f"synthesize-{g}", {**base, "generator": g, **frozen_source,
                                         "counts": {t: prof.synthetic_count(t) for t in tokens}},
                     (train_dirs[g],) if g in train_dirs else data_inputs)

    def contender_sets(g: str, train_set: str) -> dict[str, Path]:
        folder = cache.path(contender_stage(g))
        return {f"{p.token}-{g}": folder / p.token for p in specs[train_set].parts if p.paper}

    for g in contenders:

        def draw(folder: Path, g: str = g) -> dict[str, Any]:
            for t in tokens:  # sample k depends only on the seed and k: S3k is a subset of S10k
                synthesize(g, trained.get(g), prof.synthetic_count(t), folder / t, seed=seed, profile=prof,
                           data=data, progress=progress, data_seed=data_seed)
            return {"outputs": [f"{t}/manifest.csv" for t in tokens]}

        add(f"synthesize-{g}", lambda g=g: contender_stage(g), draw,
            after=[f"train-{g}"] if g in train_dirs else [])

    # 4: segmentation, Table 2 -----------------------------------------------------------------
    segment_tasks: list[str] = []
    for k in seeds:
        for arch in archs:
            for train_set in (*train_sets, *twins):
                twin = twins.get(train_set)
                if twin is not None:  # a twin: the paper's set with each paper part read from the contender's
                    g, of = twin
                    named = {p.name: dict(user_sets.named)[p.name] for p in specs[of].named}
                    cfg = {**base, "arch": arch, "train_set": train_set, "seg_seed": k, "target": "binary"}

                    def twin_segment(folder: Path, arch: str = arch, train_set: str = train_set, k: int = k,
                                     g: str = g, of: str = of, named: dict[str, Path] = named) -> dict[str, Any]:
                        sources = SyntheticSources(None, (*named.items(), *contender_sets(g, of).items()))
                        return _segment_stage(folder, arch, train_set, k, sources, data=data, prof=prof,
                                              progress=progress, data_seed=data_seed)

                    name = f"segment-{arch}-{_stage_slug(train_set)}-seed{k}"
                    add(name, lambda name=name, cfg=cfg, g=g, of=of, named=named: Stage(
                        name, cfg, data_inputs + tuple(named.values()) + tuple(contender_sets(g, of).values())),
                        twin_segment, after=[f"synthesize-{g}"])
                    segment_tasks.append(name)
                    continue
                synthetic = any(p.paper for p in specs[train_set].parts)
                named = {p.name: dict(user_sets.named)[p.name] for p in specs[train_set].named}
                cfg = {**base, "arch": arch, "train_set": train_set, "seg_seed": k, "target": "binary"}

                def segment(folder: Path, arch: str = arch, train_set: str = train_set, k: int = k,
                            synthetic: bool = synthetic, named: dict[str, Path] = named) -> dict[str, Any]:
                    sources = SyntheticSources(synth_dir() if synthetic else None, tuple(named.items()))
                    return _segment_stage(folder, arch, train_set, k, sources, data=data, prof=prof,
                                          progress=progress, data_seed=data_seed)

                name = f"segment-{arch}-{_stage_slug(train_set)}-seed{k}"
                add(name, lambda name=name, cfg=cfg, synthetic=synthetic, named=named: Stage(
                    name, cfg, data_inputs + ((synth_dir(),) if synthetic else ()) + tuple(named.values())),
                    segment, after=["synthesize"] if synthetic else [])
                segment_tasks.append(name)

    # 4b: the floor segmenter (no training, seconds) on the same test images: Table 2's floor row,
    # against which every trained cell and every segmentation claim is tested (issue 24)
    if archs and train_sets:

        def floor(folder: Path) -> dict[str, Any]:
            res = run_floor(data=data, profile=prof, out=folder, data_seed=data_seed, write_summary=False)
            rel = Path("floor") / "binary" / f"data{data_seed}"
            return {"outputs": [str(rel / "records.csv"), str(rel / "observations.csv")],
                    "pq": res.row.get("pq_mean"), "status": res.row.get("status", "ok")}

        add("segment-floor", lambda: Stage("segment-floor", {**base, "segmenter": FLOOR_SEGMENTER,
                                                             "config": asdict(FloorConfig()), "target": "binary"},
                                           data_inputs), floor)

    # every stage, on the executor; the records are gathered in the task order, whoever ran them
    results = make_executor(executor, jobs=jobs, address=address, on_done=done).run(tasks)
    frames: list[Any] = []
    obs_frames: list[Any] = []
    for task in tasks:
        if task.name.startswith(("quality-", "segment-")):
            res = results[task.name][0]
            frames.append(load_records(res.path / res.result["outputs"][0]))
            obs_frames.append(load_observations(res.path / res.result["outputs"][0], required=True))

    # 5: records and report ---------------------------------------------------------------------
    t_report = time.perf_counter()
    save_records(pd.concat(frames, ignore_index=True), out / "records.csv")
    if obs_frames:
        save_observations(pd.concat(obs_frames, ignore_index=True), out / "records.csv")
    # read back: the canonical form ("" rather than NaN for a key a record kind lacks, such as a
    # quality record's ``aggregation``), so every table and claim groups all kinds
    records = load_records(out / "records.csv")
    if trained:
        grid = _sample_grid({**trained, **{n: None for n in frozen}}, data, prof, data_seed, out / "report" / "figures" / "samples.png")
        console.print(f"sample grid: {grid}")
    # the final screen: Table 1, Table 2 and the claims (printed by write_report once every file is
    # written), the time table, the report's path; the per-metric evidence, the pooled rows and
    # the comparison with the paper's numbers are in the report
    console.rule("Results")
    manifest = write_report(records, out / "report", reference="sharp-gan",
                            title=f"Sharp-GAN reproduction ({prof.name} profile, {data}, seed {seed}, data seed {data_seed})",
                            console=console, sources=[out / "records.csv"], runs=train_runs, compact=True)
    report_s = {"stage": "report", "spent_s": round(time.perf_counter() - t_report, 3)}
    console.print(time_table([*timings, *stages, report_s],
                             time.perf_counter() - t0 + sum(float(t["spent_s"]) for t in timings), group=True))
    for line in failed_runs(records):
        console.print(f"[bold red]failed run:[/] [red]{line}[/]")
    comparison = out / "report" / "comparison.md"
    console.print(f"report: {out / 'report' / 'report.html'}"
                  + (f" (ours vs the paper's numbers: {comparison.name})" if comparison.is_file() else ""))
    return ReproduceResult(out, records, manifest, stages, time.perf_counter() - t0)


def _stage_family(name: str) -> str:
    """The row a stage joins in a grouped time table: ``segment-unet-R-seed0`` -> ``segment unet``,
    ``quality-sharp-gan`` -> ``quality``; other stages keep their name."""
    if name.startswith("segment-"):
        return "segment " + name.split("-")[1]
    if name.startswith("quality-"):
        return "quality"
    return name


def time_table(stages: Sequence[dict[str, Any]], total_s: float | None = None, group: bool = False) -> Any:
    """A rich table of where the time went: one row per stage (wall time, share of the total).

    Args:
        stages: ``{"stage", "spent_s" (or "seconds"), "skipped"?}`` rows in the order they ran;
            ``spent_s`` is the time this run spent on the stage (a cached stage: the lookup).
        total_s: the whole run's wall time; the time outside the listed stages (imports, loading
            records, printing) becomes an ``other`` row. Default: the sum of the stages.
        group: one row per stage family (the segmentation cells of each architecture, the quality
            stages) with its stage count, for a summary screen; the order is that of first use.
    """

    spent = [float(st["spent_s"] if "spent_s" in st else st["seconds"]) for st in stages]
    listed = sum(spent)
    total = max(float(total_s), listed) if total_s is not None else listed
    if group:
        fam: dict[str, list[tuple[float, bool]]] = {}
        for st, sec in zip(stages, spent):
            fam.setdefault(_stage_family(str(st["stage"])), []).append((sec, bool(st.get("skipped"))))
        rows = []
        for name, items in fam.items():
            cached = sum(c for _, c in items)
            label = name + (f" ({len(items)} stages)" if len(items) > 1 else "")
            if cached:
                label += " (cached)" if cached == len(items) else f" ({cached} cached)"
            rows.append((label, sum(s for s, _ in items)))
    else:
        rows = [(str(st["stage"]) + (" (cached)" if st.get("skipped") else ""), sec) for st, sec in zip(stages, spent)]
    if total - listed >= 0.05:
        rows.append(("other", total - listed))
    t = Table(title="Where the time went", show_header=True, title_justify="left")
    t.add_column("stage")
    t.add_column("wall time", justify="right")
    t.add_column("share", justify="right")
    for name, sec in rows:
        t.add_row(name, _fmt_seconds(sec), f"{100 * sec / total:.1f}%" if total > 0 else "-")
    t.add_section()
    t.add_row("total", _fmt_seconds(total), "100%" if total > 0 else "-")
    return t


def _fmt_seconds(sec: float) -> str:
    """``9.5 s``, ``1 min 05 s``."""
    if sec < 60:
        return f"{sec:.1f} s"
    m, s = divmod(int(round(sec)), 60)
    return f"{m} min {s:02d} s"


def failed_runs(records: Any) -> list[str]:
    """One line per failed experiment of a record table (``kind model train_set seed: failure``)."""
    if "status" not in records.columns:
        return []
    bad = records[records["status"] == "failed"]
    lines = []
    for r in bad.drop_duplicates(["kind", "model", "train_set", "seed"]).itertuples():
        what = f"{r.model} {r.train_set} seed {r.seed}" if r.kind == "segmentation" else f"{r.model} (Table 1)"
        lines.append(f"{what}: {r.failure}")
    return lines
