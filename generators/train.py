"""Training a generator on the real training split: ``gbench train-gen``.

The training stream (``CropDataset`` + ``gbench.engine.StepLoader``) draws, for every item,
a uniformly placed crop of the profile's size from one training tile, then one of the 8 flips /
90-degree rotations (the paper's "random crop, flip, rotation"), from the item's own generator
``np.random.default_rng([seed, epoch, index])``. An epoch shows as many crops as the grid of
non-overlapping crops covering the training tiles has (``grid_positions``), each tile drawn in
proportion to its area; with ``paper`` (500 epochs, batch 16) that fixes the number of steps.

Files under ``out``: ``checkpoints/last.pt`` (engine), ``history.csv`` (losses per step),
``samples/step-XXXXXX.png`` (rows: input map, real crop, synthetic image for a fixed set of
training crops), ``run.json`` (config, profile, seed, versions, device, git revision, wall time,
``deviations`` from the paper the generator lists, and ``status`` / ``failure``).

A run that did not learn is recorded as failed, not as a result (:mod:`gbench.metrics.failures`): a
NaN/inf loss stops ``engine.fit``; ``train_generator`` then returns (``TrainResult.failure``,
``checkpoint``: the last finite one, else the state the failure left) and ``run.json`` says
``"status": "failed"`` with the loss and step. After a finished run the generator is run on a
fixed batch of :data:`CHECK_BATCH` training maps; near-constant outputs across the batch, flat
images or NaN outputs fail it the same way. ``default_epochs`` on a module (``mask-paint``: 1) sets the run's
length when ``steps`` is not given.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gbench import generators
from gbench.core.errors import DataError
from gbench.core.fileio import clean_orphan_temps, folder_lock, write_json
from gbench.core.hashing import Stage
from gbench.core.profiles import Profile, as_profile
from gbench.core.provenance import provenance
from gbench.data.io import write_png
from gbench.data.patches import augment, grid_positions, pad_to, random_crop
from gbench.data.resolve import resolve_dataset
from gbench.data.types import Dataset, Sample
from gbench.engine import (
    CHECKPOINT_NAME,
    CHECKPOINT_VERSION,
    Callback,
    FitContext,
    FitResult,
    StepLoader,
    dist_info,
    fit,
    load_checkpoint,
    save_checkpoint,
)
from gbench.metrics.failures import output_failure

__all__ = ["CropDataset", "SampleGrid", "TrainResult", "train_generator", "resolve_steps", "sample_grid", "run_key"]


class CropDataset:
    """Random training crops of a dataset's tiles as generator training items (a ``StepDataset``).

    Args:
        dataset: training tiles.
        size: crop side.
        make_item: (image uint8 (S,S,3), instances (S,S)) -> item dict (``GeneratorModule.train_item``).
        augment: apply a random dihedral transform after cropping.
    """

    def __init__(self, dataset: Dataset | list[Sample], size: int, make_item: Any, augment: bool = True) -> None:
        if len(dataset) == 0:
            raise ValueError("the training set is empty")
        self.size = int(size)
        self.make_item = make_item
        self.augment = augment
        self._tiles: list[Sample] = [dataset[i] for i in range(len(dataset))]  # loaded once, kept in memory
        self._padded = [pad_to(s.image, s.instances, self.size) for s in self._tiles]
        counts = [len(grid_positions(inst.shape[0], self.size, self.size)) * len(grid_positions(inst.shape[1], self.size, self.size))
                  for _, inst in self._padded]
        self._owner = np.repeat(np.arange(len(counts)), counts)

    def __len__(self) -> int:
        return int(self._owner.size)

    @property
    def tiles(self) -> int:
        return len(self._tiles)

    def crop(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image, inst = self._padded[int(self._owner[index])]
        image, inst = random_crop(image, inst, self.size, rng)
        if self.augment:
            image, inst = augment(image, inst, rng)
        return image, inst

    def get(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.make_item(*self.crop(index, rng))


def resolve_steps(profile: Profile, loader: StepLoader, steps: int | None) -> int:
    """``steps`` if given, else the profile's ``generator.max_steps``, else its epochs over the crop stream."""
    if steps is not None:
        if steps <= 0:
            raise ValueError(f"--steps must be positive, got {steps}")
        return int(steps)
    if profile.generator.max_steps is not None:
        return int(profile.generator.max_steps)
    return loader.steps_for_epochs(profile.generator.epochs)


def _to_rgb(x: np.ndarray) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, 3) uint8 (one channel is shown as gray)."""
    if x.shape[0] == 1:
        x = np.repeat(x, 3, axis=0)
    return (np.clip(x.transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)


def sample_grid(module: Any, items: list[Mapping[str, np.ndarray]], device: torch.device | str = "cpu") -> np.ndarray:
    """A PNG-ready (3 S + 2 gaps, k S + gaps, 3) uint8 sheet: rows input map, real, synthetic.

    The generator runs in eval mode under ``no_grad``, which touches neither the weights, the
    BatchNorm statistics nor any random generator, so sampling does not change the training run.
    """
    cond = torch.from_numpy(np.stack([it["cond"] for it in items])).to(device)
    fake = module.generate(cond).float().cpu().numpy()
    rows = [[_to_rgb(it["cond"]) for it in items], [_to_rgb(it["image"]) for it in items], [_to_rgb(f) for f in fake]]
    s = rows[0][0].shape[0]
    gap = 2
    k = len(items)
    sheet = np.full((3 * s + 2 * gap, k * s + (k - 1) * gap, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            sheet[r * (s + gap):r * (s + gap) + s, c * (s + gap):c * (s + gap) + s] = tile
    return sheet


class SampleGrid(Callback):
    """Writes ``samples/step-XXXXXX.png`` every ``every`` steps and at the end."""

    def __init__(self, items: list[Mapping[str, np.ndarray]], every: int) -> None:
        self.items = items
        self.every = max(1, int(every))
        self.written: list[Path] = []

    def _write(self, ctx: FitContext, step: int) -> None:
        if ctx.out_dir is None:
            return

        path = ctx.out_dir / "samples" / f"step-{step:06d}.png"
        write_png(path, sample_grid(ctx.module, self.items, ctx.device))
        self.written.append(path)

    def on_step_end(self, ctx: FitContext, step: int, logs: dict[str, float]) -> None:
        if step % self.every == 0 and step != ctx.max_steps:
            self._write(ctx, step)

    def on_fit_end(self, ctx: FitContext, result: FitResult) -> None:
        if result.steps > result.start_step:
            self._write(ctx, result.steps)


@dataclass(frozen=True)
class TrainResult:
    """Where a training run left its files and what it did (``module``: the trained module)."""

    out: Path
    checkpoint: Path | None
    fit: FitResult
    run_json: Path | None
    samples: tuple[Path, ...]
    module: Any = None
    failure: str = ""

    @property
    def status(self) -> str:
        """``ok``, or ``failed`` when a failed-run check fired (``failure`` says which)."""
        return "failed" if self.failure else "ok"


def _data_identity(data: str, tiles: list[Sample]) -> dict[str, Any]:
    """What the training data is, by content: sha256 over every training tile's name, image and
    instance map (as loaded), so a resumed run cannot silently continue on other data."""

    h = hashlib.sha256()
    for t in tiles:
        for part in (t.name.encode("utf-8"), str(t.image.shape).encode(), np.ascontiguousarray(t.image).tobytes(),
                     str(t.instances.shape).encode(), np.ascontiguousarray(t.instances).tobytes()):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
    return {"tiles": len(tiles), "content_sha256": h.hexdigest()}


def run_key(name: str, config: Mapping[str, Any], prof: Profile, seed: int, data: str,
            tiles: list[Sample]) -> tuple[str, dict[str, Any]]:
    """The key of a training run: the stage-cache key (``gbench.core.hashing.Stage``) of everything the
    weights depend on (generator, its full config, seed, batch size, the training tiles by content).

    The number of steps is not part of it (a resumed run may be extended), nor is the device.

    Returns:
        ``(key, document)``: the sha256 and the JSON document it hashes.
    """

    stage = Stage("train-gen", {"generator": name, "config": dict(config), "seed": int(seed),
                                "batch_size": int(prof.generator.batch_size), "data": _data_identity(data, tiles)})
    return stage.key(), stage.document()["config"]


def _check_resume(out: Path, key: str, document: Mapping[str, Any], data: str | None = None) -> None:
    """Refuse to resume a checkpoint made for another generator, config, seed or data."""

    ckpt = out / "checkpoints" / CHECKPOINT_NAME
    if not ckpt.is_file():
        return
    meta = load_checkpoint(ckpt).get("meta") or {}
    if meta.get("run_key") == key:
        return
    old = meta.get("run_document")
    if isinstance(old, Mapping):
        diff = [k for k in document if old.get(k) != document[k]]
        if "config" in diff and isinstance(old.get("config"), Mapping):
            cfg = document["config"]
            diff[diff.index("config")] = "options (" + ", ".join(
                f"{k} {old['config'].get(k)!r} -> {cfg.get(k)!r}" for k in cfg if old["config"].get(k) != cfg.get(k)) + ")"
        if "generator" in diff:
            diff[diff.index("generator")] = f"generator ({old.get('generator')!r} -> {document['generator']!r})"
        names = {"data": "training data (--data)", "batch_size": "batch size (--profile)", "seed": "seed"}
        diff = [names.get(d, d) for d in diff]
    else:  # a checkpoint from before run keys: compare what it recorded (generator, options, --data)
        diff = []
        if meta.get("generator") != document["generator"]:
            diff.append(f"generator ({meta.get('generator')!r} -> {document['generator']!r})")
        if meta.get("config") is not None and dict(meta["config"]) != dict(document["config"]):
            diff.append("options")
        if data is not None and meta.get("data") is not None and str(meta["data"]) != str(data):
            diff.append(f"data ({meta['data']!r} -> {data!r})")
        if not diff:
            return
    raise DataError(out, f"--resume: the run in this folder was made with a different {', '.join(diff) or 'setup'}; "
                         "use another --out, or --overwrite to start again")


#: Generators whose ``ngf``/``ndf`` default to the profile's ``generator.width``.
WIDTH_FROM_PROFILE: frozenset[str] = frozenset({"gan-binary", "gan-dist", "sharp-gan"})


def train_generator(
    name: str,
    data: str,
    out: str | Path,
    *,
    profile: str | Profile = "demo",
    seed: int = 0,
    resume: bool = False,
    steps: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    checkpoint_every: int | None = None,
    sample_every: int | None = None,
    progress: bool = True,
    device: str | None = None,
    dataset: Dataset | None = None,
    overwrite: bool = False,
    data_seed: int = 0,
    keep_optimizer_state: bool = True,
) -> TrainResult:
    """Train generator ``name`` on the training split of ``data``.

    Args:
        name: registered generator (``generators.available()``).
        data: dataset name or path (``gbench.data.resolve.resolve_dataset``; built-ins sized by the profile).
        out: run folder.
        profile: a :class:`~gbench.core.profiles.Profile` or its name (``smoke`` / ``demo`` / ``paper``);
            its ``generator`` section gives crop size, batch size, learning rate, steps and width.
        seed: seeds weights, crops, augmentation and dropout.
        data_seed: draws a built-in dataset (which tiles exist); never the training seed.
        resume: continue from ``out/checkpoints/last.pt``.
        steps: total optimiser steps (default: the section's ``max_steps`` or its epochs).
        overrides: generator config fields (``{"ngf": 32, "beta": 0.5}``); ``image_size``, ``lr``,
            ``ngf``/``ndf`` (pix2pix generators: the profile's ``generator.width``)
            and ``init_seed`` come from the profile and seed unless given here.
        checkpoint_every: steps between checkpoints (default: a tenth of the run, at least 1).
        sample_every: steps between sample grids (default: a fifth of the run).
        progress: progress bar.
        device: None picks CUDA when available.
        dataset: use this training set instead of loading ``data`` (tests, notebooks).
        overwrite: train from scratch over a run already in ``out`` (without it, and without
            ``resume``, an existing ``checkpoints/last.pt`` is refused).
        keep_optimizer_state: False drops the optimiser states from the final ``last.pt`` (a
            third of the size; the run can then not be extended to more steps).

    Returns:
        A :class:`TrainResult`.

    Raises:
        DataError: ``out`` holds a run and neither ``resume`` nor ``overwrite`` is set; or
            ``resume`` finds a run of another generator, config, seed or data (the run key).
    """

    t0 = time.perf_counter()
    prof = as_profile(profile)
    gen = prof.generator
    out = Path(out)
    if not resume and not overwrite and (out / "checkpoints" / CHECKPOINT_NAME).is_file():
        raise DataError(out, "already holds a training run; use --resume to continue it or --overwrite to replace it")
    opts = {"image_size": gen.image_size, "lr": gen.lr, "init_seed": seed, **dict(overrides or {})}
    if name in WIDTH_FROM_PROFILE:
        opts = {"ngf": gen.width, "ndf": gen.width, **opts}
    module = generators.create(name, **opts)
    if dataset is None:
        dataset = resolve_dataset(data, "train", prof, data_seed)
    size = int(module.config.image_size)
    crops = CropDataset(dataset, size, module.train_item)
    loader = StepLoader(crops, gen.batch_size, seed)
    one_pass = getattr(module, "default_epochs", None)  # non-learning generators (mask-paint): one pass
    total = loader.steps_for_epochs(int(one_pass)) if steps is None and one_pass else resolve_steps(prof, loader, steps)
    ckpt_every = checkpoint_every or max(1, total // 10)
    sample_every = sample_every or max(1, total // 5)
    # a fixed preview set: the first crops of tiles 0..k-1, drawn from their own generator
    k = min(prof.preview_samples, crops.tiles)
    first_of_tile = [int(np.flatnonzero(crops._owner == t)[0]) for t in range(k)]
    preview = [crops.get(i, np.random.default_rng([seed, 2**31 - 1, i])) for i in first_of_tile]
    grid = SampleGrid(preview, sample_every)
    config = module.config_dict()
    rkey, rdoc = run_key(name, config, prof, seed, str(data), crops._tiles)
    meta = {"generator": name, "config": config, "profile": prof.name, "seed": seed, "data": str(data),
            "data_seed": data_seed,
            "run_key": rkey, "run_document": rdoc}
    info = dist_info()
    if resume:
        _check_resume(out, rkey, rdoc, str(data))
    with contextlib.ExitStack() as stack:
        if info.is_main:
            stack.enter_context(folder_lock(out))  # a second train-gen into the same folder is refused
            clean_orphan_temps(out)  # temp files of a killed run
        watch = _Watch()
        try:
            result = fit(module, loader, max_steps=total, seed=seed, out_dir=out, checkpoint_every=ckpt_every,
                         resume=resume, progress=progress, callbacks=[grid, watch], device=device, meta=meta,
                         description=f"train {name}", keep_optimizer_state=keep_optimizer_state,
                         runtime=prof.runtime)
            failure = ""
        except FloatingPointError as exc:  # engine.fit stops at the first NaN/inf loss: a failed run
            failure = str(exc)
            result = watch.partial_result(out, t0)
            if result.checkpoint is None and info.is_main:  # downstream stages still get a checkpoint
                result = dataclasses.replace(result, checkpoint=_failed_checkpoint(out, module, result, seed, meta,
                                                                                    failure))
        run_json = None
        if info.is_main:
            if not failure:  # near-constant outputs on a fixed batch of training maps
                failure = _output_check(module, crops, seed, result.device)
            hist = result.history
            n = max(1, min(10, len(hist) // 4))
            summary = {key: {"first": float(np.mean([h[key] for h in hist[:n]])), "last": float(np.mean([h[key] for h in hist[-n:]]))}
                       for key in (hist[0] if hist else {}) if key != "step"}
            run_json = write_json(out / "run.json", {
                "command": "train-gen",
                "generator": name,
                "config": config,
                "data": str(data), "data_seed": data_seed,
                "dataset": {"name": dataset.name if hasattr(dataset, "name") else str(data), "tiles": crops.tiles,
                            "crops_per_epoch": len(crops)},
                "profile_settings": prof.to_dict(),
                "steps": result.steps,
                "resumed_from": result.start_step,
                "run_key": rkey,
                "batch_size": gen.batch_size,
                "epochs_seen": result.steps * gen.batch_size / len(crops),
                "checkpoint": str(result.checkpoint) if result.checkpoint else None,
                "checkpoint_every": ckpt_every,
                "world_size": result.world_size,
                "train_device": result.device,
                "runtime": result.runtime,
                "data_wait_s": result.data_wait_s,
                "wall_time_s": time.perf_counter() - t0,
                "fit_time_s": result.wall_time_s,
                "loss_first_last": summary,
                "status": "failed" if failure else "ok",
                "failure": failure,
                "deviations": module.deviations() if hasattr(module, "deviations") else [],
                "provenance": provenance(profile=prof.name, seed=seed, data_seed=data_seed, runtime=result.runtime),
            })
    return TrainResult(out, result.checkpoint, result, run_json, tuple(grid.written), module, failure)


class _Watch(Callback):
    """Keeps a handle on the run's history so a run stopped by a NaN/inf loss still reports it."""

    def __init__(self) -> None:
        self.ctx: FitContext | None = None
        self.start = 0

    def on_fit_start(self, ctx: FitContext, start_step: int) -> None:
        self.ctx, self.start = ctx, start_step

    def partial_result(self, out: Path, t0: float) -> FitResult:
        """A :class:`FitResult` of the finite steps; ``checkpoint``: the last one written, if any."""

        history = list(self.ctx.history) if self.ctx is not None else []
        ckpt = out / "checkpoints" / CHECKPOINT_NAME
        return FitResult(steps=int(history[-1]["step"]) if history else self.start, start_step=self.start,
                         history=history, checkpoint=ckpt if ckpt.is_file() else None,
                         wall_time_s=time.perf_counter() - t0,
                         device=str(self.ctx.device) if self.ctx is not None else "cpu",
                         world_size=self.ctx.world_size if self.ctx is not None else 1)


def _failed_checkpoint(out: Path, module: Any, result: FitResult, seed: int, meta: Mapping[str, Any],
                       failure: str) -> Path:
    """``checkpoints/last.pt`` of a run that failed before its first checkpoint: the module as the
    failure left it (engine format, ``meta["failure"]`` set), so synthesis and quality stages can
    load it and report the run as failed instead of stopping."""

    state = {"version": CHECKPOINT_VERSION, "step": result.steps, "seed": seed, "world_size": result.world_size,
             "module": {k: v.detach().clone() for k, v in module.state_dict().items()},
             "optimizers": {k: o.state_dict() for k, o in module.optimizers.items()}, "schedulers": {},
             "rng": [], "history": list(result.history), "meta": {**dict(meta), "failure": failure}}
    return save_checkpoint(out / "checkpoints" / CHECKPOINT_NAME, state)


#: Crops of the fixed batch the end-of-training output check runs on.
CHECK_BATCH = 8


def _output_check(module: Any, crops: CropDataset, seed: int, device: str) -> str:
    """``gbench.metrics.failures.output_failure`` on the generator's outputs for :data:`CHECK_BATCH` training
    crops spread over the crop stream (fixed by ``seed``): near-constant across the batch, flat
    images or NaN/inf are a failed run."""

    n = min(CHECK_BATCH, len(crops))
    idx = np.unique(np.linspace(0, len(crops) - 1, n).round().astype(int))
    items = [crops.get(int(i), np.random.default_rng([seed, 2**31 - 2, int(i)])) for i in idx]
    cond = torch.from_numpy(np.stack([it["cond"] for it in items])).to(device)
    return output_failure(module.generate(cond).float().cpu().numpy())

