"""Train one segmenter on one training set and score it on a real test split.

The one training loop is :func:`gbench.engine.fit`, called once per cell with an
:class:`gbench.engine.EarlyStopping` callback: every ``val_every`` steps the model is scored on a
validation split carved from the training set, the best weights (by the monitored value) are
kept in memory (and in ``last.pt``'s callback state, for an exact resume), training stops after
``patience`` validations without improvement, and the test split is scored with the best
weights. Files of a cell: ``checkpoints/last.pt`` (overwritten every ``checkpoint_every`` steps;
when training ends it keeps the last weights, history and validation state but no optimiser
state), ``checkpoints/best.pt`` (the best weights), ``history.csv`` and ``validation.json``.
Once the cell is scored and its result written, :func:`finish_checkpoints` keeps one
checkpoint, the weights scored (``best.pt``; ``last.pt`` where nothing was validated): an
interrupted cell still has ``last.pt`` to resume from, a finished one is never resumed.

Data. Training items are random ``image_size`` crops (tiles smaller than that are mirror
padded) with one of the 8 flips/90-degree rotations, drawn from
``np.random.default_rng([seed, epoch, index])`` by :class:`gbench.engine.StepLoader`; every
training image is equally likely whatever its size. The validation split takes
``val_fraction`` of every part of the training set (at least one image of a part with two or
more), chosen by a permutation seeded with ``(seed, part index)``; validation items are the
grid crops of those images (at most ``max_val_crops``). Test tiles are scored whole: each is
mirror padded to a multiple of 32 on each side (once per process: :func:`padded_tiles`),
predicted in one pass (tiles of one shape batched, ``torch.inference_mode``) and cropped back,
then post-processed and compared with its full instance map.

Images enter the network as float in [0, 1] scaled to [-1, 1].
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from rich.progress import Progress
from torch import nn

from gbench import segmentation
from gbench.core.fileio import write_json
from gbench.core.profiles import Profile
from gbench.core.runtime import Runtime
from gbench.data.patches import augment, grid_crops, random_crop
from gbench.data.types import Dataset
from gbench.engine import (
    CHECKPOINT_NAME,
    EarlyStopping,
    StepLoader,
    backward,
    dist_info,
    fit,
    init_distributed,
    optimizer_step,
    select_device,
)
from gbench.metrics.instance import aggregate, instance_metrics
from gbench.segmentation.postprocess import PostprocessConfig, postprocess
from gbench.segmentation.targets import Target, get_target

__all__ = ["SegmentConfig", "SegmenterModule", "TrainItems", "CropItems", "split_train_val",
           "predict_maps", "predict_instances", "evaluate", "padded_tiles", "PaddedTile", "train_segmenter", "TrainOutcome", "config_from_profile",
           "finish_checkpoints"]

#: Default number of validations per run (``val_every`` = max(one epoch, steps / VAL_TIMES)).
VAL_TIMES = 20

@dataclass(frozen=True)
class SegmentConfig:
    """How one segmenter is trained and scored.

    Attributes:
        arch: registered segmenter (``unet``, ``segnet``).
        model: options passed to ``segmentation.create`` as ((name, value), ...).
        target: ``binary`` (the paper's), ``contour`` or ``distance``.
        image_size: training crop side (multiple of 32).
        batch_size: training batch size.
        lr: Adam learning rate (betas 0.9, 0.999).
        epochs: epochs over the training images when ``max_steps`` is None.
        max_steps: optimiser steps (overrides ``epochs``).
        val_fraction: share of every training part held out for validation (0 disables
            validation and early stopping).
        val_every: steps between validations (None: one epoch, but at most ``VAL_TIMES``
            validations per run).
        patience: validations without improvement before stopping (0: never stop early; the
            last weights are then used when there is no validation split).
        monitor: ``loss`` (validation loss, lower is better) or ``pq`` (validation PQ, pooled).
        max_val_crops: cap on validation crops.
        postprocess: instance post-processing parameters.
        checkpoint_every: steps between checkpoints inside a chunk.
    """

    arch: str = "unet"
    model: tuple[tuple[str, Any], ...] = ()
    target: Literal["binary", "contour", "distance"] = "binary"
    image_size: int = 256
    batch_size: int = 16
    lr: float = 1e-4
    epochs: int = 500
    max_steps: int | None = None
    val_fraction: float = 0.1
    val_every: int | None = None
    patience: int = 5
    monitor: Literal["loss", "pq"] = "loss"
    max_val_crops: int = 32
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        get_target(self.target)
        if self.image_size <= 0 or self.image_size % 32:
            raise ValueError(f"image_size must be a positive multiple of 32, got {self.image_size}")
        if self.batch_size <= 0 or self.epochs <= 0 or self.lr <= 0:
            raise ValueError("batch_size, epochs and lr must be positive")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {self.max_steps}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.val_every is not None and self.val_every <= 0:
            raise ValueError(f"val_every must be positive, got {self.val_every}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if self.monitor not in ("loss", "pq"):
            raise ValueError(f"monitor must be 'loss' or 'pq', got {self.monitor!r}")
        if self.max_val_crops <= 0 or self.checkpoint_every <= 0:
            raise ValueError("max_val_crops and checkpoint_every must be positive")

    @property
    def model_options(self) -> dict[str, Any]:
        return dict(self.model)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model_options
        return d


def config_from_profile(profile: Profile, arch: str, target: str = "binary", **overrides: Any) -> SegmentConfig:
    """A :class:`SegmentConfig` from the profile's section for ``arch`` (:meth:`Profile.segmenter`:
    model options, crop, batch, lr, schedule, validation cadence, patience); ``overrides`` replace
    fields last (``model`` as a dict is merged into the section's options). A profile without a
    section for ``arch`` is a :class:`gbench.core.profiles.ProfileError`.
    """
    section = segmentation.profile_section(profile, arch)  # a plugin's architecture may train like a built-in one
    model = {**section.model_options, **(overrides.pop("model", None) or {})}
    cfg = SegmentConfig(arch=arch, model=tuple(sorted(model.items())), target=target,  # type: ignore[arg-type]
                        image_size=section.image_size, batch_size=section.batch_size, lr=section.lr,
                        epochs=section.epochs, max_steps=section.max_steps, val_every=section.val_every,
                        patience=section.patience)
    names = {f.name for f in dataclasses.fields(cfg)}
    bad = sorted(set(overrides) - names)
    if bad:
        raise ValueError(f"segmentation config has no option(s) {', '.join(bad)} (known: {', '.join(sorted(names))})")
    return dataclasses.replace(cfg, **overrides)


# ---------------------------------------------------------------------------------------------
# Data


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


class TrainItems:
    """Random augmented crops: ``get(index, rng) -> {"image", "target"}`` for ``StepLoader``.

    Args:
        sources: (dataset, sample index) of every training image.
        size: crop side.
        target: the training target (encodes the instance map).
    """

    def __init__(self, sources: Sequence[tuple[Dataset, int]], size: int, target: Target) -> None:
        if not sources:
            raise ValueError("the training set is empty")
        self.sources = list(sources)
        self.size = size
        self.target = target

    def __len__(self) -> int:
        return len(self.sources)

    def get(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        ds, k = self.sources[index]
        s = ds[k]
        img, inst = random_crop(s.image, s.instances, self.size, rng)
        img, inst = augment(img, inst, rng)
        return {"image": _to_tensor(img), "target": torch.from_numpy(self.target.encode(inst))}


class CropItems:
    """Fixed grid crops of a few images (validation): list-like of dicts with the instances."""

    def __init__(self, sources: Sequence[tuple[Dataset, int]], size: int, target: Target, max_crops: int) -> None:
        self.items: list[dict[str, Any]] = []
        for ds, k in sources:
            s = ds[k]
            for img, inst, _ in grid_crops(s.image, s.instances, size):
                self.items.append({"image": _to_tensor(img), "target": torch.from_numpy(target.encode(inst)),
                                   "instances": inst})
                if len(self.items) >= max_crops:
                    return

    def __len__(self) -> int:
        return len(self.items)


def split_train_val(parts: Sequence[tuple[Dataset, Sequence[int]]], val_fraction: float,
                    seed: int) -> tuple[list[tuple[Dataset, int]], list[tuple[Dataset, int]]]:
    """Carve a validation split from every part of a training set, deterministically.

    Part ``j`` is permuted by ``np.random.default_rng([seed, 7919, j])``; its first
    ``round(val_fraction * n)`` images (at least 1 when ``val_fraction`` > 0 and n >= 2, at most
    n - 1) go to validation.

    Returns:
        (train sources, validation sources) as (dataset, sample index) pairs.
    """
    train: list[tuple[Dataset, int]] = []
    val: list[tuple[Dataset, int]] = []
    for j, (ds, idx) in enumerate(parts):
        idx = list(idx)
        n = len(idx)
        n_val = 0
        if val_fraction > 0 and n >= 2:
            n_val = min(n - 1, max(1, round(val_fraction * n)))
        perm = np.random.default_rng([seed, 7919, j]).permutation(n)
        chosen = set(perm[:n_val].tolist())
        for pos, k in enumerate(idx):
            (val if pos in chosen else train).append((ds, k))
    return train, val


# ---------------------------------------------------------------------------------------------
# Module


class SegmenterModule(nn.Module):
    """A segmentation network with its target, loss and Adam optimiser, for ``engine.fit``.

    Args:
        net: the network (N, 3, H, W) -> (N, target.channels, H, W) logits.
        target: the training target.
        lr: Adam learning rate.
    """

    #: steps through ``engine.backward`` / ``engine.optimizer_step``: ``--amp fp16`` works
    supports_fp16 = True

    def __init__(self, net: nn.Module, target: Target, lr: float) -> None:
        super().__init__()
        self.net = net
        self.target = target
        self.__dict__["_run"] = net  # the network forward uses (a DDP wrapper under DDP); not a submodule
        self.optimizers = {"adam": torch.optim.Adam(self.net.parameters(), lr=lr, betas=(0.9, 0.999))}

    def wrap_ddp(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        self.__dict__["_run"] = wrap(self.net)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits of images (N, 3, H, W) in [0, 1] through the training wrapper (DDP or the net)."""
        return self._run(image * 2.0 - 1.0)

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        """Logits of images (N, 3, H, W) in [0, 1] from the bare network (inference, validation)."""
        return self.net(image * 2.0 - 1.0)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        opt = self.optimizers["adam"]
        opt.zero_grad(set_to_none=True)
        loss = self.target.loss(self(batch["image"]), batch["target"])
        backward(self, loss)  # loss.backward(), scaled under --amp fp16
        optimizer_step(self, opt)
        return {"loss": float(loss.detach())}


# ---------------------------------------------------------------------------------------------
# Prediction and scoring


def _pad_offsets(h: int, w: int, multiple: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) mirror padding that brings (h, w) to multiples of ``multiple``."""
    ph, pw = (-h) % multiple, (-w) % multiple
    return ph // 2, ph - ph // 2, pw // 2, pw - pw // 2


@dataclass(frozen=True)
class PaddedTile:
    """A test tile as scored: the sample and its mirror-padded image (uint8, H', W', 3)."""

    sample: Any
    padded: np.ndarray
    offset: tuple[int, int]

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.padded.shape[0]), int(self.padded.shape[1])


#: Test tiles loaded and padded once per process (a few datasets at most, oldest dropped first).
_TILE_CACHE: OrderedDict[tuple[Any, ...], list[PaddedTile]] = OrderedDict()
_TILE_CACHE_SIZE = 4


def _dataset_key(dataset: Dataset, multiple: int) -> tuple[Any, ...]:
    info = json.dumps(getattr(dataset, "info", {}), sort_keys=True, default=str)
    return (dataset.name, getattr(dataset, "split", ""), tuple(getattr(dataset, "names", ())), info, multiple)


def padded_tiles(dataset: Dataset, multiple: int = 32) -> list[PaddedTile]:
    """Every tile of ``dataset`` with its image mirror padded to a multiple of ``multiple``.

    Cached per process by the dataset's name, split, sample names and ``info`` (its loader,
    size and seed), so the cells of a grid load and pad the test split once.
    """
    key = _dataset_key(dataset, multiple)
    tiles = _TILE_CACHE.get(key)
    if tiles is None:
        tiles = []
        for s in dataset:
            t, b, l, r = _pad_offsets(*s.image.shape[:2], multiple)
            img = s.image if not (t or b or l or r) else np.pad(s.image, ((t, b), (l, r), (0, 0)), mode="symmetric")
            tiles.append(PaddedTile(s, np.ascontiguousarray(img), (t, l)))
        _TILE_CACHE[key] = tiles
        while len(_TILE_CACHE) > _TILE_CACHE_SIZE:
            _TILE_CACHE.popitem(last=False)
    else:
        _TILE_CACHE.move_to_end(key)
    return tiles


@torch.inference_mode()
def _forward_maps(module: SegmenterModule, padded: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Output maps (C, H', W') of same-shaped padded images in one batch."""
    dev = next(module.parameters()).device
    module.eval()
    batch = torch.stack([_to_tensor(p) for p in padded]).to(dev)
    return list(module.target.maps(module.logits(batch)).float().cpu().numpy())


#: Maps computed by :func:`evaluate`'s batched passes, keyed by ``id`` of the tile image; read by
#: :func:`predict_maps` so that per-tile code (and tests that replace ``predict_instances``)
#: keep working while the network runs in batches.
_PRECOMPUTED: dict[int, np.ndarray] = {}


def predict_maps(module: SegmenterModule, image: np.ndarray, multiple: int = 32) -> np.ndarray:
    """Output maps (C, H, W) of one whole tile, mirror padded to a multiple of ``multiple``."""
    done = _PRECOMPUTED.get(id(image))
    if done is not None:
        return done
    h, w = image.shape[:2]
    t, b, l, r = _pad_offsets(h, w, multiple)
    img = np.pad(image, ((t, b), (l, r), (0, 0)), mode="symmetric") if (t or b or l or r) else image
    return _forward_maps(module, [img])[0][:, t:t + h, l:l + w]


def predict_instances(module: SegmenterModule, image: np.ndarray, post: PostprocessConfig) -> np.ndarray:
    """Instance map (H, W) int32 of one tile."""
    return postprocess(module.target.name, predict_maps(module, image), post)


def evaluate(module: SegmenterModule, dataset: Dataset, post: PostprocessConfig,
             progress: bool = False, batch_size: int = 4) -> dict[str, Any]:
    """Score a model on every tile of ``dataset`` with DQ, SQ, PQ, AJI (and AJI+).

    Tiles come from :func:`padded_tiles` (loaded and padded once per process); tiles of one padded
    shape go through the network ``batch_size`` at a time, in eval mode under
    ``torch.inference_mode``. Batching does not change the numbers beyond float rounding (the
    network is in eval mode: no batch statistics).

    Returns:
        ``{"per_image": [{"name", dq, sq, pq, aji, aji_plus, tp, fp, fn, ...}, ...],
        "mean": aggregate(mode="mean"), "pooled": aggregate(mode="pooled")}``.
    """

    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    tiles = padded_tiles(dataset)
    if not tiles:
        raise ValueError(f"test split of {dataset.name} is empty")
    groups: dict[tuple[int, int], list[int]] = {}
    for i, t in enumerate(tiles):
        groups.setdefault(t.shape, []).append(i)
    bar = None
    if progress:
        bar = Progress(transient=True)
        task = bar.add_task(f"score {dataset.name}", total=len(tiles))
        bar.start()
    rows: list[dict[str, Any] | None] = [None] * len(tiles)
    try:
        for idx in groups.values():
            for k in range(0, len(idx), batch_size):
                chunk = [tiles[i] for i in idx[k:k + batch_size]]
                maps = _forward_maps(module, [t.padded for t in chunk])
                for t, m, i in zip(chunk, maps, idx[k:k + batch_size]):
                    (top, left), (h, w) = t.offset, t.sample.image.shape[:2]
                    _PRECOMPUTED[id(t.sample.image)] = m[:, top:top + h, left:left + w]
                    try:
                        pred = predict_instances(module, t.sample.image, post)
                    finally:
                        _PRECOMPUTED.pop(id(t.sample.image), None)
                    rows[i] = {"name": t.sample.name, **instance_metrics(pred, t.sample.instances)}
                    if bar is not None:
                        bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
    out = [r for r in rows if r is not None]
    return {"per_image": out, "mean": aggregate(out, mode="mean"), "pooled": aggregate(out, mode="pooled")}


@torch.inference_mode()
def _validate(module: SegmenterModule, val: CropItems, post: PostprocessConfig, batch_size: int) -> dict[str, float]:
    dev = next(module.parameters()).device
    module.eval()
    losses, stats = [], []
    for start in range(0, len(val), batch_size):
        chunk = val.items[start:start + batch_size]
        image = torch.stack([c["image"] for c in chunk]).to(dev)
        target = torch.stack([c["target"] for c in chunk]).to(dev)
        logits = module.logits(image)
        losses.append(float(module.target.loss(logits, target)) * len(chunk))
        maps = module.target.maps(logits).float().cpu().numpy()
        for m, c in zip(maps, chunk):
            stats.append(instance_metrics(postprocess(module.target.name, m, post), c["instances"]))
    module.train()
    pooled = aggregate(stats, mode="pooled")
    return {"val_loss": sum(losses) / len(val), "val_pq": pooled["pq"], "val_aji": pooled["aji"]}


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainOutcome:
    """What :func:`train_segmenter` did (the module holds the selected weights)."""

    module: SegmenterModule
    steps_planned: int
    steps_done: int
    best_step: int | None
    stopped_early: bool
    validations: list[dict[str, float]]
    n_train: int
    n_val: int
    n_val_crops: int
    train_time_s: float
    device: str
    runtime: dict[str, Any] = field(default_factory=dict)


def train_segmenter(config: SegmentConfig, parts: Sequence[tuple[Dataset, Sequence[int]]], *, seed: int,
                    out_dir: str | Path, resume: bool = False, progress: bool = True,
                    device: str | torch.device | None = None, description: str = "train",
                    runtime: Runtime | None = None) -> TrainOutcome:
    """Train ``config.arch`` on the images of ``parts`` with early stopping.

    Args:
        config: the run's :class:`SegmentConfig`.
        parts: the training set, one (dataset, sample indices) per part (``R``, ``S3k``, ...).
        seed: seeds the weights (``fit`` seeds torch), the batch stream and the validation carve.
        out_dir: checkpoints (``checkpoints/last.pt``, ``best.pt``), ``history.csv`` and
            ``validation.json`` go here.
        resume: continue an interrupted run from ``out_dir``.
        progress: progress bars.
        device: None picks CUDA when available.
        description: progress-bar label.
        runtime: mixed precision, channels-last, data-loading workers, determinism
            (:class:`gbench.core.runtime.Runtime`; None: auto for the device).

    Returns:
        A :class:`TrainOutcome` whose module holds the best validated weights (or the last ones
        without validation).
    """

    out = Path(out_dir)
    is_main = dist_info().is_main  # under torchrun every rank trains and validates; rank 0 writes
    target = get_target(config.target)
    train_src, val_src = split_train_val(parts, config.val_fraction, seed)
    if not train_src:
        raise ValueError("no training images left after carving the validation split")
    items = TrainItems(train_src, config.image_size, target)
    loader = StepLoader(items, config.batch_size, seed)
    steps = config.max_steps if config.max_steps is not None else loader.steps_for_epochs(config.epochs)
    val = CropItems(val_src, config.image_size, target, config.max_val_crops) if val_src else None
    every = config.val_every or max(math.ceil(len(items) / config.batch_size), math.ceil(steps / VAL_TIMES))
    if val is None:
        every = steps

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # weight initialisation (fit re-seeds for the loop itself)
        net = segmentation.create(config.arch, **{**config.model_options, "classes": target.channels})
    module = SegmenterModule(net, target, config.lr)

    # Under torchrun, one process group for training and scoring (fit would create and destroy
    # its own otherwise).
    own_group = False
    if dist_info().distributed:
        own_group = init_distributed(select_device(device, dist_info().local_rank))
    try:
        return _train(config, module, loader, val, steps, every, seed=seed, out=out, resume=resume,
                      progress=progress, device=device, description=description, is_main=is_main,
                      n_train=len(train_src), n_val=len(val_src), runtime=runtime)
    finally:
        if own_group:

            dist.destroy_process_group()


def finish_checkpoints(out_dir: str | Path) -> Path | None:
    """Keep one checkpoint of a finished cell: the weights it was scored with.

    ``best.pt`` (the validated best weights) when it exists, and ``last.pt`` (only needed to
    resume training) is deleted; without validation ``last.pt`` holds the weights scored and
    stays. Call it once the cell's result is written: a finished cell is read back, never
    resumed. Returns the checkpoint kept (None when there is none).
    """
    ckpt_dir = Path(out_dir) / "checkpoints"
    best, last = ckpt_dir / "best.pt", ckpt_dir / CHECKPOINT_NAME
    if best.is_file():
        last.unlink(missing_ok=True)
        return best
    return last if last.is_file() else None


def _train(config: SegmentConfig, module: SegmenterModule, loader: Any, val: CropItems | None, steps: int,
           every: int, *, seed: int, out: Path, resume: bool, progress: bool, device: Any, description: str,
           is_main: bool, n_train: int, n_val: int, runtime: Runtime | None = None) -> TrainOutcome:
    ckpt_dir = out / "checkpoints"
    if not resume and is_main:  # a fresh run never picks up a stale file of an earlier one
        for name in ("last.pt", "best.pt"):
            (ckpt_dir / name).unlink(missing_ok=True)
        (out / "validation.json").unlink(missing_ok=True)
    t0 = time.perf_counter()
    meta = {"config": config.to_dict(), "seed": seed}
    dev = select_device(device, dist_info().local_rank)
    module.to(dev)
    callbacks = []
    es: EarlyStopping | None = None
    if val is not None:
        def write_state(record: dict[str, float]) -> None:
            assert es is not None
            write_json(out / "validation.json", {**es.state_dict(final=True), "patience": config.patience,
                                                 "every": every})

        es = EarlyStopping(lambda m: _validate(module, val, config.postprocess, config.batch_size), every=every,
                           monitor="val_loss" if config.monitor == "loss" else "val_pq",
                           mode="min" if config.monitor == "loss" else "max", patience=config.patience,
                           weights=module.net, best_path=ckpt_dir / "best.pt", on_validate=write_state)
        callbacks.append(es)
    res = fit(module, loader, max_steps=steps, seed=seed, out_dir=out, checkpoint_every=config.checkpoint_every,
              resume=resume, progress=progress, device=device, meta=meta, description=description,
              callbacks=callbacks, keep_optimizer_state=False, runtime=runtime)
    return TrainOutcome(module=module, steps_planned=steps, steps_done=res.steps,
                        best_step=es.best_step if es is not None else None, stopped_early=res.stopped_early,
                        validations=list(es.validations) if es is not None else [], n_train=n_train, n_val=n_val,
                        n_val_crops=0 if val is None else len(val), train_time_s=time.perf_counter() - t0,
                        device=res.device, runtime=res.runtime)
