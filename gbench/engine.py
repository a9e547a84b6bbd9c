"""The one training loop: :func:`fit`, with exact resume, seeding, progress and DDP.

A trainable module is an ``nn.Module`` that

* owns its optimisers in ``module.optimizers: dict[str, torch.optim.Optimizer]`` (and,
  optionally, learning-rate schedulers in ``module.schedulers: dict[str, LRScheduler]``),
* implements ``training_step(batch, step) -> dict[str, float]``: one optimisation step on
  ``batch`` (already on the module's device), doing its own ``zero_grad`` / ``backward`` /
  ``step`` calls (a GAN's two optimiser steps live there), returning the losses to log,
* when it is to run under DistributedDataParallel, implements ``wrap_ddp(wrap)``: it replaces
  the networks its ``training_step`` calls by ``wrap(net)`` (a DDP wrapper) while keeping the
  unwrapped networks as its registered submodules, so ``state_dict`` keys do not depend on the
  world size (see ``generators.pix2pix.Pix2PixModule``).

Data come from a :class:`StepLoader`, which builds batch ``s`` from ``(seed, s)`` alone: the
epoch permutation comes from ``np.random.default_rng([seed, epoch])`` and each item's
augmentation from ``np.random.default_rng([seed, epoch, index])``. A resumed run therefore sees
exactly the batches an uninterrupted run sees without replaying earlier ones, and under DDP the
union of the ranks' shards is the single-process batch. ``fit(..., runtime=Runtime(workers=k))``
builds those batches in ``k`` DataLoader worker processes (:meth:`StepLoader.batches`): the same
batches, in the same order, so the same weights on the CPU whatever ``k``.

How a run executes on its device (:class:`gbench.core.runtime.Runtime`, auto by default: on CUDA
bf16 autocast, channels-last, DataLoader workers with pinned memory and non-blocking copies,
``cudnn.benchmark``; on the CPU float32, 0 workers, deterministic algorithms) is resolved by
``fit`` and returned in :attr:`FitResult.runtime`, with the time spent waiting for data
(:attr:`FitResult.data_wait_s`).

``fit`` writes ``out_dir/checkpoints/last.pt`` atomically every ``checkpoint_every`` steps and at
the end (step, module state, optimiser and scheduler states, torch RNG states of every rank,
loss history, callback states); ``resume=True`` continues from it and ends with the same weights
as an uninterrupted run on the CPU (bit for bit; tested). ``keep_optimizer_state=False`` leaves
the optimiser state out of the final checkpoint (a finished run's folder holds small files).

Callbacks (:class:`Callback`) run on rank 0 after every step; one can end training early
(``ctx.request_stop``; every rank follows). :class:`EarlyStopping` validates every ``k`` steps,
keeps the best weights (in memory, in ``last.pt`` while training, in its own file at the end)
and stops when the monitored value stops improving, so one ``fit`` call runs a whole
train-with-early-stopping job.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.distributed as dist
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset, default_collate

from gbench.core.errors import DataError
from gbench.core.fileio import clean_orphan_temps, save_torch, write_text
from gbench.core.runtime import Runtime

__all__ = [
    "fit",
    "init_distributed",
    "FitResult",
    "FitContext",
    "Callback",
    "EarlyStopping",
    "StepLoader",
    "StepDataset",
    "seed_everything",
    "select_device",
    "dist_info",
    "load_checkpoint",
    "save_checkpoint",
    "safe_torch_load",
    "plain_state",
    "move_to_device",
    "backward",
    "optimizer_step",
    "CHECKPOINT_NAME",
]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
CHECKPOINT_VERSION = 1


# ---------------------------------------------------------------------------------------------
# Seeding and devices


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed torch's global generators (CPU and every CUDA device) for a training run.

    Library code passes explicit ``torch.Generator``s; this is for the top of a training loop,
    where dropout and weight initialisation draw from the global generator. With
    ``deterministic`` it also asks for deterministic algorithms (``warn_only``: an operation
    without a deterministic implementation warns instead of failing) and turns cuDNN
    benchmarking off. On CUDA, ``CUBLAS_WORKSPACE_CONFIG`` is set (if unset) as cuBLAS requires.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    torch.manual_seed(int(seed))
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def select_device(device: str | torch.device | None = None, local_rank: int = 0) -> torch.device:
    """``device`` if given, else ``cuda:<local_rank>`` when CUDA is available, else the CPU."""
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    return torch.device("cpu")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a torchrun launch (world size 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    """Rank, world size and local rank from an initialised process group or torchrun's env."""

    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    return DistInfo(rank, world, local)


def init_distributed(device: torch.device) -> bool:
    """Initialise the default process group from torchrun's env; True when this call did it."""

    if dist.is_initialized():
        return False
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1 but torch.distributed is not available in this build")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return True


def move_to_device(obj: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move every tensor in a (nested) dict / list / tuple to ``device`` (non-blocking: from pinned
    memory the copy overlaps the computation). ``channels_last``: 4-D floating-point tensors
    (image batches) in NHWC memory format."""
    if isinstance(obj, torch.Tensor):
        t = obj.to(device, non_blocking=True)
        if channels_last and t.dim() == 4 and t.is_floating_point():
            t = t.contiguous(memory_format=torch.channels_last)
        return t
    if isinstance(obj, Mapping):
        return type(obj)({k: move_to_device(v, device, channels_last) for k, v in obj.items()})  # type: ignore[call-arg]
    if isinstance(obj, tuple):
        return tuple(move_to_device(v, device, channels_last) for v in obj)
    if isinstance(obj, list):
        return [move_to_device(v, device, channels_last) for v in obj]
    return obj


def to_channels_last(module: nn.Module) -> nn.Module:
    """4-D parameters and buffers (2-D convolution weights) of ``module`` in NHWC memory format, in
    place (the parameter objects, hence the optimisers' references, are kept; 5-D ones of 3-D
    convolutions are left as they are)."""
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            if t.dim() == 4:
                t.data = t.data.contiguous(memory_format=torch.channels_last)
    return module


def backward(module: nn.Module, loss: torch.Tensor) -> None:
    """``loss.backward()`` for a ``training_step``; under ``--amp fp16`` the loss is scaled by the
    run's gradient scaler (``fit`` hands it to modules that set ``supports_fp16 = True``, which
    call this and :func:`optimizer_step` instead of ``backward()`` / ``step()``)."""
    scaler = module.__dict__.get("grad_scaler")
    (scaler.scale(loss) if scaler is not None else loss).backward()


def optimizer_step(module: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()``, or the gradient scaler's step (unscale, skip on inf/NaN) under fp16."""
    scaler = module.__dict__.get("grad_scaler")
    if scaler is not None:
        scaler.step(optimizer)
    else:
        optimizer.step()


# ---------------------------------------------------------------------------------------------
# Data


@runtime_checkable
class StepDataset(Protocol):
    """A dataset whose items are a pure function of (index, rng): ``get(index, rng)``."""

    def __len__(self) -> int: ...

    def get(self, index: int, rng: np.random.Generator) -> Any: ...


def _default_collate(items: list[Any]) -> Any:
    return default_collate(items)


class StepLoader:
    """Deterministic, step-indexed batches: ``batch(step)`` depends only on ``(seed, step)``.

    The data stream is the concatenation of epoch permutations; permutation ``e`` is
    ``np.random.default_rng([seed, e]).permutation(n)``. Global batch ``s`` holds stream
    positions ``[s * batch_size, (s + 1) * batch_size)`` (a batch may straddle two epochs, so a
    dataset smaller than a batch works and nothing is dropped). Item ``i`` of epoch ``e`` is
    ``dataset.get(i, np.random.default_rng([seed, e, i]))`` (random crop / augmentation drawn
    from that generator), or ``dataset[i]`` for a plain sequence.

    Under DDP rank ``r`` of ``R`` takes the ``r``-th of ``R`` contiguous, near-equal parts of the
    global batch (``np.array_split``; no padding with duplicates), so the union of the ranks'
    shards is exactly the single-process batch.

    Args:
        dataset: a :class:`StepDataset` or a sequence.
        batch_size: global batch size (summed over ranks).
        seed: stream seed.
        collate: list of items -> batch (``torch.utils.data.default_collate``).
        num_replicas: world size.
        rank: this process's rank.
    """

    def __init__(self, dataset: StepDataset | Sequence[Any], batch_size: int, seed: int,
                 collate: Callable[[list[Any]], Any] | None = None, num_replicas: int = 1, rank: int = 0) -> None:
        n = len(dataset)
        if n == 0:
            raise ValueError("StepLoader: the dataset is empty")
        if batch_size <= 0:
            raise ValueError(f"StepLoader: batch_size must be positive, got {batch_size}")
        if num_replicas <= 0 or not 0 <= rank < num_replicas:
            raise ValueError(f"StepLoader: bad rank {rank} of {num_replicas}")
        if batch_size < num_replicas:
            raise ValueError(f"StepLoader: global batch size {batch_size} is smaller than the world size {num_replicas}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.collate = collate or _default_collate
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self._n = n
        self._perm_cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        """Steps per epoch, rounded up."""
        return math.ceil(self._n / self.batch_size)

    @property
    def steps_per_epoch(self) -> float:
        return self._n / self.batch_size

    def steps_for_epochs(self, epochs: int) -> int:
        """Optimiser steps that show every item ``epochs`` times (rounded up)."""
        return max(1, math.ceil(epochs * self._n / self.batch_size))

    def with_rank(self, num_replicas: int, rank: int) -> StepLoader:
        """The same stream sharded for ``rank`` of ``num_replicas``."""
        return StepLoader(self.dataset, self.batch_size, self.seed, self.collate, num_replicas, rank)

    def _perm(self, epoch: int) -> np.ndarray:
        p = self._perm_cache.get(epoch)
        if p is None:
            p = np.random.default_rng([self.seed, epoch]).permutation(self._n)
            self._perm_cache = {epoch: p}  # batches are asked for in order: keep one
        return p

    def global_indices(self, step: int) -> list[tuple[int, int]]:
        """(epoch, dataset index) of every item of global batch ``step``."""
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        out = []
        for pos in range(step * self.batch_size, (step + 1) * self.batch_size):
            epoch, k = divmod(pos, self._n)
            out.append((epoch, int(self._perm(epoch)[k])))
        return out

    def indices(self, step: int) -> list[tuple[int, int]]:
        """(epoch, dataset index) of this rank's share of batch ``step``."""
        glob = self.global_indices(step)
        parts = np.array_split(np.arange(len(glob)), self.num_replicas)
        return [glob[i] for i in parts[self.rank]]

    def item(self, epoch: int, index: int) -> Any:
        if hasattr(self.dataset, "get"):
            return self.dataset.get(index, np.random.default_rng([self.seed, epoch, index]))  # type: ignore[union-attr]
        return self.dataset[index]  # type: ignore[index]

    def batch(self, step: int) -> Any:
        """This rank's collated share of global batch ``step``."""
        return self.collate([self.item(e, i) for e, i in self.indices(step)])

    def batches(self, start: int, end: int, *, workers: int = 0, pin_memory: bool = False) -> Iterable[Any]:
        """Batches ``start .. end - 1`` in order: ``self.batch(s)`` for each ``s``.

        With ``workers`` > 0 they are built in ``torch.utils.data.DataLoader`` worker processes
        (a map-style dataset over step indices, :class:`StepBatches`: worker ``w`` builds whole
        batches, crops, augmentation and conditioning maps included) and arrive in step order, so
        they are the batches of ``workers=0``, bit for bit, whatever the number of workers. The
        workers live for the whole iteration (one iterator over every step: what persistent
        workers buy an epoch loop) and prefetch two batches each. Worker RNGs (torch, numpy,
        ``random``) are seeded from ``(seed, start, worker id)`` (:func:`seed_worker`), although
        items draw only from their own ``np.random.default_rng([seed, epoch, index])``.
        ``pin_memory`` puts each batch in page-locked memory (for non-blocking copies to CUDA).
        """
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        if workers == 0 and not pin_memory:
            return (self.batch(s) for s in range(start, end))
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + start)  # the workers' base seed
        return DataLoader(StepBatches(self, start, end), batch_size=None, shuffle=False, num_workers=workers,
                          collate_fn=_keep, pin_memory=pin_memory, worker_init_fn=seed_worker if workers else None,
                          generator=gen, persistent_workers=workers > 0, prefetch_factor=2 if workers else None)


def _keep(batch: Any) -> Any:
    """The DataLoader's collate for ready-made batches (module level: workers may pickle it)."""
    return batch


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: numpy's and ``random``'s global generators from the worker's torch seed
    (the DataLoader derives it from its seeded ``generator`` and the worker id)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class StepBatches(Dataset):
    """Map-style dataset of whole batches: item ``k`` is ``loader.batch(start + k)``."""

    def __init__(self, loader: StepLoader, start: int, end: int) -> None:
        if end < start:
            raise ValueError(f"StepBatches: end {end} < start {start}")
        self.loader, self.start, self.end = loader, int(start), int(end)

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, k: int) -> Any:
        if not 0 <= k < len(self):
            raise IndexError(k)
        return self.loader.batch(self.start + k)


# ---------------------------------------------------------------------------------------------
# Callbacks and results


@dataclass
class FitContext:
    """What a callback sees: the module, where files go, the device and the process's rank."""

    module: nn.Module
    out_dir: Path | None
    device: torch.device
    rank: int
    world_size: int
    max_steps: int
    data: Any
    history: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str | None = None
    #: seconds this call has waited for batches so far (fetch and copy to the device)
    data_wait_s: float = 0.0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def request_stop(self, reason: str) -> None:
        """Ask :func:`fit` to stop after the current step (under DDP rank 0's request reaches
        every rank). The first reason given is kept."""
        if self.stop_reason is None:
            self.stop_reason = str(reason)


class Callback:
    """Hooks called by :func:`fit` on rank 0 only (no-ops by default; override what you need).

    Order: ``load_state_dict`` (on resume, when the checkpoint holds this callback's state),
    ``on_fit_start``, then per step ``on_step_end`` (and ``on_checkpoint`` after each
    checkpoint), then ``on_train_end`` once training is over (the last step reached or a stop
    requested with ``ctx.request_stop``), the final checkpoint, ``on_fit_end``.

    A callback whose state a resumed run needs (counters, the best value so far, the best
    weights) sets ``state_key`` and implements ``state_dict`` / ``load_state_dict``: :func:`fit`
    stores the state in ``last.pt`` under ``callbacks[state_key]``, so it is written atomically
    with the weights it belongs to and a resumed run continues exactly.
    """

    #: Name of this callback's entry in a checkpoint's ``callbacks`` (None: nothing to keep).
    state_key: str | None = None

    def state_dict(self, final: bool = False) -> dict[str, Any] | None:
        """State to checkpoint (tensors and plain Python values). ``final``: for the checkpoint
        written when training is over (may leave out what only a continued run would need)."""
        return None

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (called before ``on_fit_start`` on resume)."""

    def on_fit_start(self, ctx: FitContext, start_step: int) -> None:
        """Before the first step (``start_step`` > 0 after a resume)."""

    def on_step_end(self, ctx: FitContext, step: int, logs: dict[str, float]) -> None:
        """After step ``step`` (1-based count of completed steps) with its (rank-averaged) losses.
        Call ``ctx.request_stop(reason)`` to end training after this step."""

    def on_checkpoint(self, ctx: FitContext, step: int, path: Path) -> None:
        """After a checkpoint was written."""

    def on_train_end(self, ctx: FitContext, step: int) -> None:
        """Training is over at ``step`` (not called when a resumed run had nothing left to do);
        runs before the final checkpoint, so files written here exist whenever it does."""

    def on_fit_end(self, ctx: FitContext, result: FitResult) -> None:
        """After the last step and the final checkpoint."""


class EarlyStopping(Callback):
    """Validate every ``every`` steps, keep the best weights, stop when the monitored value stops
    improving; at the end the best weights are written to ``best_path`` and put back in the model.

    The best weights live in memory (a CPU copy) and in ``last.pt`` (this callback's
    checkpointed state) while training runs, so a resumed run knows them; the final checkpoint
    leaves them out when ``best_path`` holds them.

    Args:
        validate: ``module -> {name: value}``, called with ``fit``'s module on rank 0 (it may
            switch the module to eval mode; the train/eval flags are put back afterwards).
        every: steps between validations; the last step is always validated.
        monitor: key of ``validate``'s result to watch.
        mode: ``min`` (lower is better, e.g. a loss) or ``max`` (e.g. PQ).
        patience: validations without improvement before stopping (0: never stop early; the
            best weights are kept all the same).
        min_delta: an improvement must beat the best value by more than this.
        weights: the module whose weights are kept (default: ``fit``'s module; e.g. the bare
            network inside a training wrapper).
        best_path: file for the best weights (``{"step", "module", "monitor", "value"}``,
            written atomically when training ends); None keeps them in memory only.
        restore_best: load the best weights into ``weights`` when ``fit`` ends.
        on_validate: called with each validation record ``{"step", **values}`` (e.g. to write it).

    Attributes:
        validations: every validation record so far (resumed runs included).
        best, best_step: the best monitored value and the step it was reached at.
        stopped: the stop reason, or None.
    """

    state_key = "early_stopping"

    def __init__(self, validate: Callable[[nn.Module], Mapping[str, float]], *, every: int, monitor: str,
                 mode: str = "min", patience: int = 0, min_delta: float = 0.0, weights: nn.Module | None = None,
                 best_path: str | Path | None = None, restore_best: bool = True,
                 on_validate: Callable[[dict[str, float]], None] | None = None) -> None:
        if every <= 0:
            raise ValueError(f"EarlyStopping: every must be positive, got {every}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        if patience < 0 or min_delta < 0:
            raise ValueError("EarlyStopping: patience and min_delta must be >= 0")
        self.validate = validate
        self.every = int(every)
        self.monitor = monitor
        self.mode = mode
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.weights = weights
        self.best_path = Path(best_path) if best_path is not None else None
        self.restore_best = restore_best
        self.on_validate = on_validate
        self.validations: list[dict[str, float]] = []
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad = 0
        self.stopped: str | None = None
        self._best_state: dict[str, torch.Tensor] | None = None

    def _target(self, ctx: FitContext) -> nn.Module:
        return self.weights if self.weights is not None else ctx.module

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return math.isfinite(value)
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def state_dict(self, final: bool = False) -> dict[str, Any]:
        state: dict[str, Any] = {"validations": list(self.validations), "best": self.best,
                                 "best_step": self.best_step, "bad": self.bad, "stopped": self.stopped,
                                 "monitor": self.monitor, "mode": self.mode}
        if self._best_state is not None and not (final and self.best_path is not None):
            state["best_weights"] = self._best_state
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.validations = [dict(v) for v in state.get("validations", [])]
        self.best, self.best_step = state.get("best"), state.get("best_step")
        self.bad, self.stopped = int(state.get("bad", 0)), state.get("stopped")
        weights = state.get("best_weights")
        self._best_state = {k: v.detach().cpu().clone() for k, v in weights.items()} if weights is not None else None

    def _load_best_file(self) -> None:
        if self._best_state is not None or self.best_path is None or not self.best_path.is_file():
            return
        ckpt = load_checkpoint(self.best_path)
        if self.best_step is None or int(ckpt["step"]) == int(self.best_step):
            self._best_state = ckpt["module"]

    def on_step_end(self, ctx: FitContext, step: int, logs: dict[str, float]) -> None:
        if step % self.every and step != ctx.max_steps:
            return
        modes = [(m, m.training) for m in ctx.module.modules()]
        try:
            values = {k: float(v) for k, v in self.validate(ctx.module).items()}
        finally:
            for m, flag in modes:
                m.training = flag
        if self.monitor not in values:
            raise KeyError(f"EarlyStopping: validate() returned {sorted(values)}, no {self.monitor!r}")
        record = {"step": step, **values}
        self.validations.append(record)
        if self._improved(values[self.monitor]):
            self.best, self.best_step, self.bad = values[self.monitor], step, 0
            self._best_state = {k: v.detach().cpu().clone() for k, v in self._target(ctx).state_dict().items()}
        else:
            self.bad += 1
            if self.patience and self.bad >= self.patience and step < ctx.max_steps:
                self.stopped = (f"{self.monitor} did not improve for {self.bad} validations "
                                f"(best {self.best:.4g} at step {self.best_step})")
                ctx.request_stop(self.stopped)
        if self.on_validate is not None:
            self.on_validate(record)

    def on_train_end(self, ctx: FitContext, step: int) -> None:
        if self.best_path is not None and self._best_state is not None:
            save_checkpoint(self.best_path, {"step": self.best_step, "module": self._best_state,
                                             "monitor": self.monitor, "value": self.best})

    def on_fit_end(self, ctx: FitContext, result: FitResult) -> None:
        self._load_best_file()
        if self.restore_best and self._best_state is not None:
            self._target(ctx).load_state_dict(self._best_state)


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` did.

    Attributes:
        steps: completed optimiser steps (including those before a resume).
        start_step: the step the run started from (0, or the checkpoint's step on resume).
        history: one dict per completed step: ``{"step": k, <loss name>: value, ...}`` (losses
            averaged over ranks), including the resumed run's earlier steps.
        checkpoint: path of the last checkpoint, or None without ``out_dir``.
        wall_time_s: seconds spent in this call.
        device: the device trained on.
        world_size: number of processes.
        stopped_early: a callback ended training before ``max_steps`` (in this or an earlier,
            resumed call).
        stop_reason: why (empty when not stopped).
        data_wait_s: seconds of this call spent waiting for batches (building them, or waiting for
            the workers, and the copy to the device).
        runtime: the resolved :class:`gbench.core.runtime.Runtime` the run used (``amp``,
            ``channels_last``, ``workers``, ``deterministic``) and ``cudnn_benchmark``.
    """

    steps: int
    start_step: int
    history: list[dict[str, float]]
    checkpoint: Path | None
    wall_time_s: float
    device: str
    world_size: int
    stopped_early: bool = False
    stop_reason: str = ""
    data_wait_s: float = 0.0
    runtime: dict[str, Any] = field(default_factory=dict)

    def mean(self, key: str, first: int | None = None, last: int | None = None) -> float:
        """Mean of one logged value over the first or last ``n`` steps (or all)."""
        vals = [h[key] for h in self.history if key in h]
        if first is not None:
            vals = vals[:first]
        if last is not None:
            vals = vals[-last:]
        if not vals:
            raise ValueError(f"no logged values for {key!r}")
        return float(np.mean(vals))


# ---------------------------------------------------------------------------------------------
# Checkpoints


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            log.warning("checkpoint has CUDA RNG states for %d devices, this machine has %d; not restored",
                        len(cuda), torch.cuda.device_count())


def plain_state(obj: Any) -> Any:
    """``obj`` as the plain types a ``weights_only`` load accepts: dicts, lists, tuples, str, int,
    float, bool, None, tensors (and torch dtypes/sizes/devices). Dataclasses become dicts, paths
    strings, numpy scalars Python numbers, numpy arrays tensors, sets and enums lists and values.

    Raises:
        TypeError: a value of another type (a function, a model object ...), naming where it is.
    """
    import dataclasses
    import enum

    def conv(o: Any, where: str) -> Any:
        if o is None or isinstance(o, (bool, int, float, str, bytes, torch.Tensor, torch.dtype, torch.Size,
                                        torch.device)):
            return o
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(o))
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, enum.Enum):
            return conv(o.value, where)
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {f.name: conv(getattr(o, f.name), f"{where}.{f.name}") for f in dataclasses.fields(o)}
        if isinstance(o, Mapping):
            return {conv(k, where): conv(v, f"{where}.{k}") for k, v in o.items()}
        if isinstance(o, tuple):
            return tuple(conv(v, f"{where}[{i}]") for i, v in enumerate(o))
        if isinstance(o, (list, set, frozenset)):
            items = sorted(o, key=repr) if isinstance(o, (set, frozenset)) else o
            return [conv(v, f"{where}[{i}]") for i, v in enumerate(items)]
        raise TypeError(f"checkpoint entry {where} is a {type(o).__name__}, not a plain value; store it as "
                        "dicts, lists, numbers, strings or tensors")

    return conv(obj, "state")


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename (never half-written).

    The state is stored as plain types (:func:`plain_state`) so that :func:`load_checkpoint` can read
    it with ``weights_only=True``. Saved through a buffer (``gbench.core.fileio.save_torch``):
    identical states give identical bytes.
    """

    return save_torch(path, plain_state(dict(state)))


def safe_torch_load(path: str | Path, map_location: str | torch.device = "cpu", what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)``: a file that would need to run code to load is refused.

    Every failure is a one-line :class:`DataError` naming the file and what is wrong: missing,
    truncated or not a torch file, or a pickle that holds objects other than tensors and plain
    values (an older gbench stored such metadata; a crafted file may hold a callable). Nothing in the
    file is executed.
    """
    import pickle

    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} not found" if not path.exists() else f"{what}: not a file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = [ln.split("WeightsUnpickler error:")[-1].strip() for ln in text.splitlines()
                 if "WeightsUnpickler error" in ln]
        detail = found[0].split(" was not an allowed global")[0] if found else ""
        if "Unsupported global" in detail or "Unsupported class" in detail:
            raise DataError(path, f"{what} written by an older gbench or not a plain checkpoint; it holds objects "
                                  f"other than tensors and plain values ({detail}), and loading those could run "
                                  "code, so it is refused (re-create it with this gbench)") from None
        raise DataError(path, f"cannot read {what} (truncated or not a torch file{': ' + detail[:120] if detail else ''})") from None
    except (RuntimeError, EOFError, OSError, KeyError, ValueError, AttributeError, TypeError, IndexError,
            UnicodeDecodeError) as exc:
        first = (str(exc).splitlines() or [""])[0]
        if "central directory" in first or "zip archive" in first or isinstance(exc, (EOFError, KeyError)):
            why = "truncated or not a torch file"
        else:
            why = f"{type(exc).__name__}: {first[:200]}"
        raise DataError(path, f"cannot read {what} ({why})") from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` with ``weights_only=True`` (:func:`safe_torch_load`).

    Raises:
        DataError: one line naming the file: missing, truncated, not a torch file, not a gbench
            checkpoint, or holding objects other than plain values (never loaded: no code runs).
    """

    path = Path(path)
    ckpt = safe_torch_load(path, map_location, "checkpoint")
    if not isinstance(ckpt, dict) or "module" not in ckpt or "step" not in ckpt:
        raise DataError(path, "not a gbench checkpoint (no 'module' / 'step' entries)")
    if not isinstance(ckpt["module"], Mapping) or not all(isinstance(v, torch.Tensor) for v in ckpt["module"].values()):
        raise DataError(path, "not a gbench checkpoint ('module' is not a dict of tensors)")
    try:
        int(ckpt["step"])
    except (TypeError, ValueError):
        raise DataError(path, f"not a gbench checkpoint ('step' is {ckpt['step']!r})") from None
    meta = ckpt.get("meta")
    if meta is not None and (not isinstance(meta, Mapping) or not isinstance(meta.get("config", {}), Mapping)):
        raise DataError(path, "not a gbench checkpoint ('meta' or its 'config' is not a dict)")
    return ckpt


def _module_state(module: nn.Module) -> dict[str, Any]:
    return {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in module.state_dict().items()}


def _optimizers(module: nn.Module) -> dict[str, torch.optim.Optimizer]:
    opts = getattr(module, "optimizers", None)
    if not isinstance(opts, Mapping) or not opts:
        raise ValueError(f"{type(module).__name__} must own its optimisers in .optimizers (a non-empty dict)")
    return dict(opts)


def _schedulers(module: nn.Module) -> dict[str, Any]:
    return dict(getattr(module, "schedulers", None) or {})


# ---------------------------------------------------------------------------------------------
# Progress


class _Progress:
    def __init__(self, enabled: bool, total: int, start: int, description: str) -> None:
        self._p = None
        if not enabled:
            return

        self._p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"))
        self._p.start()
        self._task = self._p.add_task(description, total=total, completed=start, losses="")

    def update(self, step: int, logs: Mapping[str, float] | None) -> None:
        if self._p is None:
            return
        if logs is None:
            self._p.update(self._task, completed=step)
        else:
            text = " ".join(f"{k}={v:.4g}" for k, v in logs.items())
            self._p.update(self._task, completed=step, losses=text)

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()


# ---------------------------------------------------------------------------------------------
# The loop


def _reduce_logs(logs: Mapping[str, float], world_size: int, device: torch.device) -> dict[str, float]:
    out = {k: float(v) for k, v in logs.items()}
    if world_size <= 1 or not out:
        return out

    keys = sorted(out)
    t = torch.tensor([out[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= world_size
    return dict(zip(keys, t.tolist()))


def _agree_stop(ctx: FitContext, world_size: int, device: torch.device) -> bool:
    """Whether to stop after this step: rank 0's callbacks decide, every rank follows."""
    if world_size <= 1:
        return ctx.stop_reason is not None

    flag = torch.tensor([1 if ctx.stop_reason is not None else 0], dtype=torch.int32, device=device)
    dist.broadcast(flag, 0)
    if flag.item() and ctx.stop_reason is None:
        ctx.stop_reason = "stopped by rank 0"
    return bool(flag.item())


def _gather_rng(world_size: int) -> list[dict[str, Any]]:
    state = _rng_state()
    if world_size <= 1:
        return [state]

    states: list[Any] = [None] * world_size
    dist.all_gather_object(states, state)
    return states


def fit(
    module: nn.Module,
    data: StepLoader,
    *,
    max_steps: int,
    seed: int,
    out_dir: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    progress: bool = True,
    callbacks: Iterable[Callback] = (),
    device: str | torch.device | None = None,
    log_every: int = 1,
    meta: Mapping[str, Any] | None = None,
    description: str = "train",
    keep_optimizer_state: bool = True,
    runtime: Runtime | None = None,
) -> FitResult:
    """Train ``module`` for ``max_steps`` optimiser steps (in total, counting resumed ones).

    Args:
        module: a trainable module (see the module docstring): ``optimizers`` dict and
            ``training_step(batch, step) -> dict[str, float]``; ``wrap_ddp(wrap)`` under DDP.
            Optimisers must be built over the module's own parameters (``fit`` moves the module
            to the device in place, which keeps the parameter objects).
        data: a :class:`StepLoader` (built for world size 1; ``fit`` shards it per rank).
        max_steps: total number of optimiser steps.
        seed: seeds torch's global generators (rank ``r`` of a DDP run uses ``seed + r``, so
            dropout differs between shards; DDP copies rank 0's initial weights to all ranks).
            Deterministic algorithms are switched on for the run and restored afterwards.
        out_dir: where ``checkpoints/last.pt`` and ``history.csv`` go (rank 0 only); None keeps
            nothing on disk.
        checkpoint_every: steps between checkpoints (one is always written at the end). Each
            overwrites ``last.pt``.
        resume: continue from ``out_dir/checkpoints/last.pt`` when it exists (else start fresh),
            after removing the temporary files a killed run left in ``out_dir``
            (``gbench.core.fileio.clean_orphan_temps``). A run that had finished, or that a callback
            had stopped, is not trained further.
        progress: show a rich progress bar with the latest losses (rank 0 only).
        callbacks: :class:`Callback` objects, called on rank 0; one may end training early with
            ``ctx.request_stop`` (see :class:`EarlyStopping`); their ``state_dict`` goes into
            every checkpoint.
        device: None picks CUDA when available (``cuda:LOCAL_RANK`` under DDP), else the CPU.
        log_every: steps between progress-bar loss updates (every step is kept in the history).
        meta: extra entries stored in the checkpoint under ``meta`` (model config, profile, ...).
        description: progress-bar label.
        keep_optimizer_state: False leaves the optimiser and scheduler states out of the
            checkpoint written when training is over (``last.pt`` then holds the weights, step,
            history and callback states: a small file, but the run cannot be extended to more
            steps later).
        runtime: how the run executes (:class:`gbench.core.runtime.Runtime`; None: all auto),
            resolved for the device: ``amp`` runs each ``training_step`` under ``torch.autocast``
            (``fp16`` also with a ``GradScaler``, for modules with ``supports_fp16``, see
            :func:`backward`); ``channels_last`` converts the 4-D weights and image batches;
            ``workers`` builds batches in DataLoader workers (:meth:`StepLoader.batches`; pinned
            memory on CUDA); ``deterministic`` False turns ``cudnn.benchmark`` on instead of
            deterministic algorithms. On the CPU the auto runtime is today's: float32, 0 workers,
            deterministic.

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: bad arguments, a module without optimisers, a checkpoint from a different
            ``seed`` / incompatible module, or one without optimiser state asked to train on.
    """
    if max_steps <= 0:
        raise ValueError(f"max_steps must be positive, got {max_steps}")
    if checkpoint_every <= 0 or log_every <= 0:
        raise ValueError("checkpoint_every and log_every must be positive")
    if not hasattr(module, "training_step"):
        raise ValueError(f"{type(module).__name__} has no training_step(batch, step)")
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir")
    t0 = time.perf_counter()
    info = dist_info()
    dev = select_device(device, info.local_rank)
    created_group = init_distributed(dev) if info.distributed else False
    callbacks = list(callbacks)
    keys = [cb.state_key for cb in callbacks if cb.state_key is not None]
    if len(keys) != len(set(keys)):
        raise ValueError(f"two callbacks share a state_key: {sorted(k for k in keys if keys.count(k) > 1)}")
    rt = (runtime or Runtime()).resolve(dev.type)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(str(rt.amp))
    if rt.amp == "fp16" and not getattr(module, "supports_fp16", False):
        raise ValueError(f"--amp fp16 needs loss scaling, which {type(module).__name__} does not do "
                         "(no supports_fp16); use --amp bf16 or off")
    scaler = torch.amp.GradScaler(dev.type) if rt.amp == "fp16" else None
    saved_flags = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                   torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    try:
        seed_everything(seed + info.rank, deterministic=bool(rt.deterministic))
        if not rt.deterministic:
            torch.use_deterministic_algorithms(False)
            torch.backends.cudnn.deterministic = False
            torch.backends.cudnn.benchmark = dev.type == "cuda"
        module.to(dev)
        if rt.channels_last:
            to_channels_last(module)
        module.__dict__["grad_scaler"] = scaler
        optimizers = _optimizers(module)
        schedulers = _schedulers(module)
        loader = data.with_rank(info.world_size, info.rank) if info.distributed else data

        out = Path(out_dir) if out_dir is not None else None
        ckpt_path = out / "checkpoints" / CHECKPOINT_NAME if out is not None else None
        start, history = 0, []
        stopped = ""
        cb_states: Mapping[str, Any] = {}
        if resume and out is not None and info.is_main:
            for p in clean_orphan_temps(out):
                log.info("removed %s (temporary file of a killed run)", p)
        if resume and ckpt_path is not None and ckpt_path.is_file():
            ckpt = load_checkpoint(ckpt_path, map_location=dev)
            if ckpt.get("seed") != seed:
                raise ValueError(f"{ckpt_path}: checkpoint was trained with seed {ckpt.get('seed')}, not {seed}")
            try:
                module.load_state_dict(ckpt["module"])
            except RuntimeError as exc:
                raise ValueError(f"{ckpt_path}: checkpoint does not fit this model ({str(exc).splitlines()[0]})") from None
            stopped = str(ckpt.get("stopped") or "")
            if "optimizers" in ckpt:
                for name, opt in optimizers.items():
                    opt.load_state_dict(ckpt["optimizers"][name])
                for name, sch in schedulers.items():
                    sch.load_state_dict(ckpt["schedulers"][name])
            elif not stopped and int(ckpt["step"]) < max_steps:
                raise ValueError(f"{ckpt_path}: the run finished at step {ckpt['step']} and its optimiser state was "
                                 f"dropped, so it cannot be continued to {max_steps} steps; start a new run")
            cb_states = ckpt.get("callbacks") or {}
            if scaler is not None and ckpt.get("grad_scaler"):
                scaler.load_state_dict(ckpt["grad_scaler"])
            rng = ckpt.get("rng", [])
            if len(rng) == info.world_size:
                _set_rng_state(rng[info.rank])
            else:
                log.warning("checkpoint saved by %d processes, resuming with %d: RNG streams reseeded",
                            len(rng), info.world_size)
                torch.manual_seed(seed + info.rank + 1_000_003 * int(ckpt["step"]))
            start, history = int(ckpt["step"]), list(ckpt.get("history", []))

        if info.distributed:
            wrap = getattr(module, "wrap_ddp", None)
            if wrap is None:
                raise ValueError(f"{type(module).__name__} must implement wrap_ddp(wrap) to train under DDP")

            ids = [dev.index] if dev.type == "cuda" else None
            wrap(lambda net: DDP(net, device_ids=ids))

        ctx = FitContext(module, out, dev, info.rank, info.world_size, max_steps, loader, history,
                         stop_reason=stopped or None)

        def checkpoint(step: int, final: bool = False) -> Path | None:
            rng = _gather_rng(info.world_size)
            path = None
            if info.is_main and ckpt_path is not None:
                state: dict[str, Any] = {
                    "version": CHECKPOINT_VERSION,
                    "step": step,
                    "seed": seed,
                    "world_size": info.world_size,
                    "module": _module_state(module),
                    "rng": rng,
                    "history": history,
                    "meta": dict(meta or {}),
                    "finished": final,
                    "stopped": stopped,
                    "callbacks": {cb.state_key: cb.state_dict(final=final) for cb in callbacks
                                  if cb.state_key is not None},
                }
                if keep_optimizer_state or not final:
                    state["optimizers"] = {k: o.state_dict() for k, o in optimizers.items()}
                    state["schedulers"] = {k: s.state_dict() for k, s in schedulers.items()}
                    if scaler is not None:
                        state["grad_scaler"] = scaler.state_dict()
                path = save_checkpoint(ckpt_path, state)
                _write_history(out / "history.csv", history)  # type: ignore[operator]
                for cb in callbacks:
                    cb.on_checkpoint(ctx, step, path)
            if info.distributed:
                dist.barrier()
            return path

        bar = _Progress(progress and info.is_main, max_steps, start, description)
        if info.is_main:
            for cb in callbacks:
                if cb.state_key is not None and cb_states.get(cb.state_key) is not None:
                    cb.load_state_dict(cb_states[cb.state_key])
            for cb in callbacks:
                cb.on_fit_start(ctx, start)
        last_path = ckpt_path if (ckpt_path is not None and start > 0) else None
        end = start if stopped else max_steps
        final_step = start
        module.train()
        batches = iter(loader.batches(start, end, workers=int(rt.workers or 0), pin_memory=dev.type == "cuda"))
        try:
            for step in range(start, end):
                t_wait = time.perf_counter()
                batch = move_to_device(next(batches), dev, channels_last=bool(rt.channels_last))
                ctx.data_wait_s += time.perf_counter() - t_wait
                with torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext():
                    logs = module.training_step(batch, step)
                if scaler is not None:
                    scaler.update()
                for sch in schedulers.values():
                    sch.step()
                logs = _reduce_logs(logs, info.world_size, dev)
                for k, v in logs.items():
                    if not math.isfinite(v):
                        raise FloatingPointError(f"loss {k} is {v} at step {step + 1}")
                done = step + 1
                history.append({"step": done, **logs})
                if info.is_main:
                    bar.update(done, logs if (done % log_every == 0 or done == max_steps) else None)
                    for cb in callbacks:
                        cb.on_step_end(ctx, done, logs)
                final_step = done
                if _agree_stop(ctx, info.world_size, dev):
                    stopped = ctx.stop_reason or "stopped"
                    break
                if done % checkpoint_every == 0 and done < max_steps:
                    last_path = checkpoint(done)
            if final_step > start:
                if info.is_main:
                    for cb in callbacks:
                        cb.on_train_end(ctx, final_step)
                last_path = checkpoint(final_step, final=True)
        finally:
            del batches  # DataLoader workers end with their iterator
            bar.close()
        result = FitResult(steps=max(start, final_step), start_step=start, history=list(history),
                           checkpoint=last_path if info.is_main else ckpt_path, wall_time_s=time.perf_counter() - t0,
                           device=str(dev), world_size=info.world_size, stopped_early=bool(stopped),
                           stop_reason=stopped, data_wait_s=ctx.data_wait_s,
                           runtime={**rt.to_dict(), "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)})
        if info.is_main:
            for cb in callbacks:
                cb.on_fit_end(ctx, result)
        return result
    finally:
        module.__dict__.pop("grad_scaler", None)
        # the global determinism switches are put back as they were (the RNG state is not)
        torch.use_deterministic_algorithms(saved_flags[0], warn_only=saved_flags[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved_flags[2], saved_flags[3]
        if created_group:

            dist.destroy_process_group()


def _write_history(path: Path, history: Sequence[Mapping[str, float]]) -> None:
    keys: list[str] = []
    for h in history:
        for k in h:
            if k not in keys:
                keys.append(k)
    lines = [",".join(keys)]
    for h in history:
        lines.append(",".join("" if k not in h else (str(int(h[k])) if k == "step" else repr(float(h[k]))) for k in keys))
    write_text(path, "\n".join(lines) + "\n")

