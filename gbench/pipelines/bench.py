"""``gbench bench``: what a run costs on this machine, and what ``reproduce sharp-gan`` will cost.

For every generator of ``reproduce sharp-gan`` (:data:`gbench.pipelines.reproduce.GENERATORS`)
and every segmenter (:data:`~gbench.pipelines.reproduce.ARCHS`), built and fed exactly as the
pipeline builds them under the profile (its crop, batch, width and model options; the training
split's crops, augmentation and conditioning maps through :class:`gbench.engine.StepLoader`),
:func:`measure` times

* training: ``warmup`` untimed steps, then ``steps`` timed ones of :func:`gbench.engine.fit` with
  the run's :class:`~gbench.core.runtime.Runtime` (AMP, channels-last, DataLoader workers):
  seconds per step, images per second, and the share of step time spent waiting for data
  (fetching the batch and copying it to the device, :attr:`gbench.engine.FitResult.data_wait_s`);
* inference: the forward pass the pipeline runs after training (a generator's ``generate`` on
  a batch of conditioning maps at the synthesis size; a segmenter's logits on a batch of crops),
  float32, eval mode, after one untimed batch.

:func:`project` turns the measurements into the wall time of ``gbench reproduce sharp-gan`` under
the same profile: one row per stage family, ``stages x units per stage x seconds per unit``
(units: optimiser steps from the profile's schedule, or images), and the total is the sum of
the rows. It counts training at the full schedule (early stopping can only shorten the
segmenters), the generator passes of the quality stages, the synthetic set and the segmenters'
test passes; it leaves out the quality metrics, validation passes, checkpoint and image writes
and the report (seconds to minutes, against hours of training at ``paper`` scale). A timed
assertion never enters the tests: they check the table's structure and that the total is the
sum of its parts.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gbench import generators as generator_registry
from gbench import segmentation
from gbench.core.profiles import Profile
from gbench.core.provenance import provenance
from gbench.data.patches import grid_crops
from gbench.data.resolve import resolve_dataset
from gbench.data.types import Dataset
from gbench.engine import Callback, FitContext, StepLoader, fit, select_device
from gbench.pipelines.reproduce import ARCHS, GENERATORS, SYNTH_GENERATOR, TRAIN_SETS
from gbench.generators.train import WIDTH_FROM_PROFILE, CropDataset, resolve_steps
from gbench.segmentation.sets import parse_train_spec, scaled_count
from gbench.segmentation.targets import get_target
from gbench.segmentation.train import SegmenterModule, TrainItems, config_from_profile, split_train_val

__all__ = ["Measurement", "ProjectionRow", "BenchResult", "measure", "project", "bench"]


@dataclass(frozen=True)
class Measurement:
    """One model's speed on this device.

    Attributes:
        component: ``generator`` or ``segmenter``.
        name: registered name (``sharp-gan``, ``unet``, ...).
        image_size, batch_size: training crop side and batch (the profile's).
        steps: timed training steps (after the warm-up).
        train_s_per_step: mean seconds per optimiser step (data wait included).
        data_wait_s_per_step: of which waiting for the batch (fetch and copy to the device).
        infer_images_per_s: forward-pass throughput (float32, eval mode).
        infer_size, infer_batch: image side and batch of the inference timing.
    """

    component: str
    name: str
    image_size: int
    batch_size: int
    steps: int
    train_s_per_step: float
    data_wait_s_per_step: float
    infer_images_per_s: float
    infer_size: int
    infer_batch: int

    @property
    def train_images_per_s(self) -> float:
        return self.batch_size / self.train_s_per_step if self.train_s_per_step > 0 else math.inf

    @property
    def data_wait_share(self) -> float:
        """Share of step time spent waiting for data (0..1)."""
        return self.data_wait_s_per_step / self.train_s_per_step if self.train_s_per_step > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "train_images_per_s": self.train_images_per_s,
                "data_wait_share": self.data_wait_share}


@dataclass(frozen=True)
class ProjectionRow:
    """One stage family of ``reproduce sharp-gan``: ``seconds = stages * units * seconds_per_unit``."""

    stage: str
    stages: int
    units: int
    unit: str
    seconds_per_unit: float

    @property
    def seconds(self) -> float:
        return self.stages * self.units * self.seconds_per_unit


@dataclass
class BenchResult:
    """Measurements, the projection of ``reproduce sharp-gan`` and how they were made."""

    profile: str
    device: str
    runtime: dict[str, Any]
    measurements: list[Measurement]
    projection: list[ProjectionRow]
    seconds: float
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def projected_s(self) -> float:
        """Projected wall time of ``reproduce sharp-gan``: the sum of the projection's rows."""
        return sum(r.seconds for r in self.projection)

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "device": self.device, "runtime": self.runtime,
                "measurements": [m.to_dict() for m in self.measurements],
                "projection": [{**dataclasses.asdict(r), "seconds": r.seconds} for r in self.projection],
                "projected_s": self.projected_s, "bench_seconds": self.seconds, "provenance": self.provenance}


class _StepTimer(Callback):
    """Wall clock and cumulative data wait at the end of every step (rank 0)."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, float]] = []

    def on_fit_start(self, ctx: FitContext, start_step: int) -> None:
        self.marks = [(time.perf_counter(), ctx.data_wait_s)]

    def on_step_end(self, ctx: FitContext, step: int, logs: dict[str, float]) -> None:
        self.marks.append((time.perf_counter(), ctx.data_wait_s))  # logs are floats: the step has synced

    def per_step(self, warmup: int) -> tuple[float, float, int]:
        """Mean (seconds, data-wait seconds) per step after the first ``warmup`` steps."""
        (t0, w0), (t1, w1) = self.marks[warmup], self.marks[-1]
        n = len(self.marks) - 1 - warmup
        if n <= 0:
            raise ValueError("no timed steps")
        return (t1 - t0) / n, (w1 - w0) / n, n


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _throughput(run: Callable[[], Any], images: int, device: torch.device, repeats: int) -> float:
    with torch.no_grad():
        run()  # warm-up (allocations, cuDNN autotuning)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            run()
        _sync(device)
    return images * repeats / max(time.perf_counter() - t0, 1e-12)


def _time_fit(module: Any, loader: StepLoader, prof: Profile, device: torch.device, steps: int, warmup: int,
              seed: int) -> tuple[float, float, int, dict[str, Any]]:
    timer = _StepTimer()
    res = fit(module, loader, max_steps=warmup + steps, seed=seed, progress=False, callbacks=[timer], device=device,
              runtime=prof.runtime)
    s, w, n = timer.per_step(warmup)
    return s, w, n, res.runtime


def _generator_module(name: str, prof: Profile, seed: int) -> Any:
    gen = prof.generator
    opts: dict[str, Any] = {"image_size": gen.image_size, "lr": gen.lr, "init_seed": seed}
    if name in WIDTH_FROM_PROFILE:
        opts = {"ngf": gen.width, "ndf": gen.width, **opts}
    return generator_registry.create(name, **opts)


def measure(prof: Profile, train: Dataset, *, generators: Sequence[str] = GENERATORS, archs: Sequence[str] = ARCHS,
            device: str | torch.device | None = None, steps: int = 20, warmup: int = 3, infer_repeats: int = 5,
            seed: int = 0, on_result: Callable[[Measurement], None] | None = None
            ) -> tuple[list[Measurement], dict[str, Any]]:
    """Time training and inference of every generator and segmenter (module docstring).

    Args:
        prof: the profile whose shapes, batches and runtime are measured.
        train: the training tiles the crops come from.
        generators, archs: which models.
        device: None picks CUDA when available.
        steps: timed training steps per model (after ``warmup`` untimed ones).
        infer_repeats: timed inference batches per model.
        seed: weights and crop stream.
        on_result: called with each measurement as it is made (progress lines).

    Returns:
        ``(measurements, runtime)``: one :class:`Measurement` per model, and the resolved runtime
        the training steps ran under.
    """
    if steps <= 0 or warmup < 0 or infer_repeats <= 0:
        raise ValueError(f"bench needs steps > 0, warmup >= 0 and infer_repeats > 0 (got {steps}, {warmup}, "
                         f"{infer_repeats})")
    dev = select_device(device)
    out: list[Measurement] = []
    runtime: dict[str, Any] = {}
    for name in generators:
        module = _generator_module(name, prof, seed)
        size = int(module.config.image_size)
        crops = CropDataset(train, size, module.train_item)
        s, w, n, runtime = _time_fit(module, StepLoader(crops, prof.generator.batch_size, seed), prof, dev, steps,
                                     warmup, seed)
        bs, isz = prof.synthesis.batch_size, prof.synthesis.image_size
        rng = np.random.default_rng(seed)
        cond = torch.from_numpy(np.stack([crops.get(i % len(crops), rng)["cond"] for i in range(bs)])).to(dev)
        if cond.shape[-1] != isz:  # the synthesis size differs from the training crop: maps of that size
            cond = torch.nn.functional.interpolate(cond, size=(isz, isz), mode="nearest")
        module.eval()
        rate = _throughput(lambda: module.generate(cond), bs, dev, infer_repeats)
        out.append(Measurement("generator", name, size, prof.generator.batch_size, n, s, w, rate, isz, bs))
        if on_result is not None:
            on_result(out[-1])
    for arch in archs:
        cfg = config_from_profile(prof, arch)
        target = get_target(cfg.target)
        items = TrainItems([(train, i) for i in range(len(train))], cfg.image_size, target)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = segmentation.create(arch, **{**cfg.model_options, "classes": target.channels})
        module = SegmenterModule(net, target, cfg.lr)
        s, w, n, runtime = _time_fit(module, StepLoader(items, cfg.batch_size, seed), prof, dev, steps, warmup, seed)
        images = torch.rand(cfg.batch_size, 3, cfg.image_size, cfg.image_size,
                            generator=torch.Generator().manual_seed(seed)).to(dev)
        module.eval()
        rate = _throughput(lambda: module(images), cfg.batch_size, dev, infer_repeats)
        out.append(Measurement("segmenter", arch, cfg.image_size, cfg.batch_size, n, s, w, rate, cfg.image_size,
                               cfg.batch_size))
        if on_result is not None:
            on_result(out[-1])
    return out, runtime


def _segment_train_images(train_set: str, n_real: int, prof: Profile, val_fraction: float, seed: int) -> int:
    """Training images of a ``reproduce`` cell after the validation carve (as ``split_train_val``)."""
    sizes = []
    for part in parse_train_spec(train_set).parts:
        if part.kind == "real":
            sizes.append(n_real)
        else:
            n = scaled_count(part, prof)
            sizes.append(int(n) if n is not None else max(c for _, c in prof.synthesis.counts))
    kept, _ = split_train_val([(None, range(n)) for n in sizes], val_fraction, seed)  # type: ignore[misc]
    return len(kept)


def project(measurements: Sequence[Measurement], prof: Profile, train: Dataset, test: Dataset, *,
            train_sets: Sequence[str] = TRAIN_SETS, seed: int = 0) -> list[ProjectionRow]:
    """Rows of the projected wall time of ``reproduce sharp-gan`` under ``prof`` (module docstring).

    Steps per stage come from the profile's schedule exactly as the pipeline derives them
    (generators: :func:`generators.train.resolve_steps` over the crop stream, one pass for
    ``mask-paint``; segmenters: ``max_steps`` or epochs over the training images left after the
    validation carve), seconds per step from ``measurements``.
    """
    by = {(m.component, m.name): m for m in measurements}
    rows: list[ProjectionRow] = []
    gens = [m for m in measurements if m.component == "generator"]
    for m in gens:
        module = _generator_module(m.name, prof, seed)
        crops = CropDataset(train, int(module.config.image_size), module.train_item)
        loader = StepLoader(crops, prof.generator.batch_size, seed)
        one_pass = getattr(module, "default_epochs", None)
        steps = loader.steps_for_epochs(int(one_pass)) if one_pass else resolve_steps(prof, loader, None)
        rows.append(ProjectionRow(f"train-{m.name}", 1, steps, "steps", m.train_s_per_step))
    crop = prof.evaluation.crop
    n_eval = sum(1 for s in test for _ in grid_crops(s.image, s.instances, crop))
    for m in gens:
        rows.append(ProjectionRow(f"quality-{m.name}", 1, n_eval, "images",
                                  1.0 / m.infer_images_per_s))
    synth = by.get(("generator", SYNTH_GENERATOR))
    if synth is not None and any(parse_train_spec(t).synthetic for t in train_sets):
        rows.append(ProjectionRow("synthesize", 1, max(c for _, c in prof.synthesis.counts), "images",
                                  1.0 / synth.infer_images_per_s))
    for m in measurements:
        if m.component != "segmenter":
            continue
        cfg = config_from_profile(prof, m.name)
        for t in train_sets:
            n = _segment_train_images(t, len(train), prof, cfg.val_fraction, seed)
            steps = cfg.max_steps if cfg.max_steps is not None else StepLoader(range(n), cfg.batch_size, 0).steps_for_epochs(cfg.epochs)
            rows.append(ProjectionRow(f"segment-{m.name}-{t}", len(prof.seeds), int(steps), "steps", m.train_s_per_step))
        # the test pass runs on whole (padded) tiles: counted in crops of the measured size
        n_crops = sum(math.ceil(s.image.shape[0] / m.infer_size) * math.ceil(s.image.shape[1] / m.infer_size)
                      for s in test)
        rows.append(ProjectionRow(f"segment-{m.name}-test", len(train_sets) * len(prof.seeds),
                                  n_crops, "crops", 1.0 / m.infer_images_per_s))
    return rows


def bench(prof: Profile, *, data: str = "synthetic-he", data_seed: int = 0, device: str | None = None,
          steps: int = 20, warmup: int = 3, generators: Sequence[str] = GENERATORS, archs: Sequence[str] = ARCHS,
          seed: int = 0, on_result: Callable[[Measurement], None] | None = None) -> BenchResult:
    """Measure every model on this device and project ``reproduce sharp-gan`` under ``prof``."""
    t0 = time.perf_counter()
    train = resolve_dataset(data, "train", prof, data_seed)
    test = resolve_dataset(data, "test", prof, data_seed)
    measurements, runtime = measure(prof, train, generators=generators, archs=archs, device=device, steps=steps,
                                    warmup=warmup, seed=seed, on_result=on_result)
    rows = project(measurements, prof, train, test, seed=seed)
    dev = select_device(device)
    return BenchResult(prof.name, str(dev), runtime, measurements, rows, time.perf_counter() - t0,
                       provenance(profile=prof.name, seed=seed, data_seed=data_seed, runtime=runtime))
