"""Training, transfer learning and sampling of MI-GAN through :func:`gbench.engine.fit`.

:func:`train_migan` trains G1 (against D1, on the real base images ``I0``) and then G2
(against D2, on the real stacks, fed the real ``I0``) independently, as the paper does. Each
phase is one :func:`gbench.engine.fit` call with its own checkpoint folder, so ``--resume``
continues an interrupted phase exactly and skips a finished one. ``init_from`` starts all four
networks from a trained MI-GAN (the paper's MI-GAN1 -> MI-GAN2 transfer from SiHa to cancer
cells) with fresh optimisers.

A run folder holds::

    g1/checkpoints/last.pt  g1/history.csv      # phase 1 (engine checkpoints, losses per step)
    g2/checkpoints/last.pt  g2/history.csv      # phase 2
    mi-gan.pt                                   # config + weights of G1, D1, G2, D2
    samples.png  real.png                       # stack grids (rows = cells, columns = I-5 .. I+5)
    run.json                                    # data, profile, seed, config, steps, losses, provenance
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from gbench.core.errors import DataError
from gbench.core.fileio import clean_orphan_temps, write_json, write_text
from gbench.core.profiles import Profile, as_profile
from gbench.core.provenance import provenance
from gbench.core.runtime import Runtime
from gbench.data.io import write_png
from gbench.data.multifocus import AUGMENTATIONS, augment_stack, stack_array, write_stack
from gbench.data.resolve import load_stacks
from gbench.data.synthetic_cells import cell_type_of
from gbench.engine import CHECKPOINT_NAME, StepLoader, dist_info, fit, load_checkpoint
from gbench.generators.mi_gan import (
    MIGAN,
    MODEL_FILE,
    MIGANConfig,
    config_for_profile,
    load_mi_gan,
    precise_batch_norm,
    save_mi_gan,
    stacks_to_tensor,
)

__all__ = ["StackTrainingSet", "train_phase", "train_migan", "MIGANRun", "stack_grid", "write_stack_grid",
           "sample_to_folder", "schedule_for"]

def schedule_for(profile: Profile) -> dict[str, int | None]:
    """``{"steps_g1", "steps_g2", "batch_size", "n_eval", "transfer_steps_g1", "transfer_steps_g2"}`` of a
    profile's ``migan`` section (None steps: :func:`train_migan` trains ``epochs`` over the augmented
    set, G2 as long as G1; the transfer budget defaults to MI-GAN1's)."""

    m = profile.migan
    return {"steps_g1": m.steps_g1, "steps_g2": m.steps_g2,
            "batch_size": m.batch_size, "n_eval": m.n_eval,
            "transfer_steps_g1": m.transfer_steps_g1 if m.transfer_steps_g1 is not None else m.steps_g1,
            "transfer_steps_g2": m.transfer_steps_g2 if m.transfer_steps_g2 is not None else m.steps_g2}


class StackTrainingSet:
    """Training items for one MI-GAN phase, with the paper's x6 augmentation.

    Item ``6 i + k`` is stack ``i`` under augmentation ``k`` (identity, rot90, rot180, rot270,
    flip-ud, flip-lr; :data:`gbench.data.multifocus.AUGMENTATIONS`), so the set is the paper's
    augmented set (1,100 SiHa stacks -> 6,600). ``g1`` items are the base plane ``(3, S, S)``,
    ``g2`` items the whole stack ``(3, P, S, S)``, float32 in [-1, 1].

    Args:
        stacks: ``(N, P, S, S, 3)`` uint8.
        phase: ``g1`` or ``g2``.
        augment: apply the x6 augmentation (else the set has N items).
    """

    def __init__(self, stacks: np.ndarray, phase: Literal["g1", "g2"], augment: bool = True) -> None:
        if stacks.ndim != 5 or stacks.shape[-1] != 3 or stacks.dtype != np.uint8:
            raise ValueError(f"stacks must be (N, P, H, W, 3) uint8, got {stacks.shape} {stacks.dtype}")
        if phase not in ("g1", "g2"):
            raise ValueError(f"phase must be g1 or g2, got {phase!r}")
        self.stacks = stacks
        self.phase = phase
        self.k = len(AUGMENTATIONS) if augment else 1

    def __len__(self) -> int:
        return len(self.stacks) * self.k

    def get(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        stack = augment_stack(self.stacks[index // self.k], index % self.k)
        if self.phase == "g1":
            stack = stack[stack.shape[0] // 2][None]
            return stacks_to_tensor(stack[None])[0, :, 0]
        return stacks_to_tensor(stack[None])[0]


_FP16_REFUSED = ("--amp fp16: MI-GAN steps its critic n_critic times per generator step, which one loss scaler per "
                 "step cannot follow; use --amp bf16 or off")


def train_phase(model: MIGAN, stacks: np.ndarray, phase: Literal["g1", "g2"], *, steps: int, batch_size: int,
                seed: int, out_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
                augment: bool = True, device: str | None = None, checkpoint_every: int = 500,
                meta: dict[str, Any] | None = None, runtime: Runtime | None = None) -> Any:
    """Train one phase (G1/D1 or G2/D2) of ``model`` in place with :func:`gbench.engine.fit`.

    ``steps`` counts generator iterations; each draws ``n_critic * batch_size`` real items
    (``n_critic`` critic updates on fresh batches, then one generator update). ``runtime`` (default:
    auto for the device) is the engine's: ``amp="bf16"`` (the CUDA default) runs the generator and
    critic forwards under autocast, the gradient penalty in float32; ``fp16`` is refused (MI-GAN steps
    its critic ``n_critic`` times per generator step, which one loss scaler per step does not allow).

    Returns:
        The engine's :class:`~gbench.engine.FitResult`.
    """

    if batch_size <= 0 or steps <= 0:
        raise ValueError(f"batch_size and steps must be positive, got {batch_size} and {steps}")
    if runtime is not None and runtime.amp == "fp16":
        raise ValueError(_FP16_REFUSED)
    module = model.phase(phase)
    module.total_steps = steps
    data = StepLoader(StackTrainingSet(stacks, phase, augment), batch_size=batch_size * module.n_critic, seed=seed)
    res = fit(module, data, max_steps=steps, seed=seed, out_dir=out_dir, resume=resume, progress=progress,
              device=device, checkpoint_every=checkpoint_every, meta={"phase": phase, **(meta or {})},
              description=f"MI-GAN {phase.upper()}", runtime=runtime if runtime is not None else Runtime())
    if model.config.precise_bn:
        _precise_bn(model, stacks, phase, seed)
    return res


def _precise_bn(model: MIGAN, stacks: np.ndarray, phase: str, seed: int, batch: int = 64) -> None:
    """Precise BN of the phase's generator (see ``MIGANConfig.precise_bn``): G1 on 2,048 noise
    vectors drawn from ``seed``, G2 on every training I0 (all six augmentations)."""

    dev = next(model.parameters()).device
    if phase == "g1":
        gen = torch.Generator().manual_seed(int(seed) + 7)
        batches = [torch.randn(batch, model.config.z_dim, generator=gen).to(dev) for _ in range(32)]
        precise_batch_norm(model.g1, batches)
    else:
        ds = StackTrainingSet(stacks, "g1")  # the I0 of every training stack, x6 augmented
        rng = np.random.default_rng(0)
        items = torch.stack([ds.get(i, rng) for i in range(len(ds))])
        batches = [items[i:i + batch].to(dev) for i in range(0, len(items), batch)]
        precise_batch_norm(model.g2, batches)


#: Config fields that are training options, not architecture (a transfer run may change them).
_TRAINING_OPTIONS = frozenset({"lr", "betas", "n_critic", "g2_n_critic", "gp_lambda", "g2_l1", "g2_lr", "precise_bn",
                               "lr_decay"})


@dataclass(frozen=True)
class MIGANRun:
    """What :func:`train_migan` made.

    Attributes:
        out_dir: the run folder.
        model_path: ``mi-gan.pt``.
        record: the content of ``run.json`` (empty on a non-zero rank under torchrun, which writes nothing).
    """

    out_dir: Path
    model_path: Path
    record: dict[str, Any]


def _summary(history: list[dict[str, float]]) -> dict[str, Any]:
    if not history:
        return {}
    k = max(1, len(history) // 5)
    out: dict[str, Any] = {"steps": len(history)}
    for key in ("loss_d", "loss_g", "wasserstein", "gp"):
        vals = [h[key] for h in history if key in h]
        if vals:
            out[f"{key}_first"] = float(np.mean(vals[:k]))
            out[f"{key}_last"] = float(np.mean(vals[-k:]))
    return out


_RESUME_NAMES = {"data": "--data", "data_content": "training stacks (by content)", "split": "--split", "seed": "--seed",
                 "data_seed": "--data-seed", "profile": "--profile", "n_train_stacks": "number of training stacks",
                 "batch_size": "--batch-size", "augment": "augmentation", "init_from": "--init-from"}


def _check_resume(out: Path, meta: dict[str, Any]) -> None:
    """Refuse to resume a run folder whose phase checkpoints were made with other data or options.

    Compared: ``--data`` (by name and by content: a hash of the training stacks), split, seed, data
    seed, profile, number of stacks, batch size, augmentation, ``--init-from`` and every MI-GAN option
    (learning rates, widths, ...). Not compared: the number of steps (a resumed run may be extended)
    and the device. An entry an older checkpoint lacks is not compared.
    """
    for phase in ("g1", "g2"):
        ck = out / phase / "checkpoints" / CHECKPOINT_NAME
        if not ck.is_file():
            continue
        old = load_checkpoint(ck).get("meta") or {}
        diff = []
        for key, value in meta.items():
            if key not in old or old[key] == value:
                continue
            if key == "config" and isinstance(old[key], dict) and isinstance(value, dict):
                changed = [f"{k} {old[key].get(k)!r} -> {value.get(k)!r}" for k in dict.fromkeys([*old[key], *value])
                           if old[key].get(k) != value.get(k)]
                diff.append("options (" + ", ".join(changed) + ")")
            elif key in ("data_content", "init_from"):
                diff.append(_RESUME_NAMES[key])
            else:
                diff.append(f"{_RESUME_NAMES.get(key, key)} ({old[key]!r} -> {value!r})")
        if diff:
            raise DataError(out, f"--resume: the MI-GAN run in this folder ({phase} checkpoint) was made with a "
                            f"different {', '.join(diff)}; use another --out, or --overwrite to start again")


def train_migan(data: str, out: str | Path, *, profile: Profile | str = "demo", seed: int = 0, split: str = "train",
                init_from: str | Path | None = None, resume: bool = False, steps: int | None = None,
                steps_g2: int | None = None, batch_size: int | None = None, n_train: int | None = None, progress: bool = True,
                device: str | None = None, augment: bool = True, grid_samples: int | None = None,
                data_seed: int = 0, **config: Any) -> MIGANRun:
    """Train MI-GAN (G1 then G2, independently) on a stack dataset; optionally transfer from a run.

    Args:
        data: ``synthetic-cells:siha``, ``synthetic-cells:cancer``, ``multifocus:PATH`` or a folder.
        out: run folder (created).
        profile: a :class:`~gbench.core.profiles.Profile` or its name (``smoke``, ``demo``,
            ``paper``): its ``migan`` section gives image size, planes, lr, batch size, widths,
            steps and the number of built-in training stacks; its ``runtime`` how training runs
            (``--amp`` etc., :class:`~gbench.core.runtime.Runtime`; recorded per phase in ``run.json``).
        seed: seeds data order, initialisation and noise.
        data_seed: draws the built-in data set (which stacks exist); never the training seed.
        split: split of ``data`` to train on.
        init_from: a trained MI-GAN run folder (or ``mi-gan.pt``) to start from (transfer
            learning); its architecture is kept and ``config`` may not change it.
        resume: continue the phases from their checkpoints in ``out``.
        steps: generator iterations per phase (default: the section's ``steps_g1``, else its
            ``epochs`` over the augmented set).
        steps_g2: generator iterations of G2 when they differ from ``steps`` (default: ``steps``
            when given, else the section's ``steps_g2``, else G1's).
        batch_size: real items per critic update (default: the section's).
        n_train: built-in stacks to train on (default: the profile's ``migan_count`` of the cell
            type: ``train_stacks`` SiHa, ``cancer_stacks`` cancer stacks, about half as in the paper).
        progress: progress bars.
        device: None = CUDA when available, else CPU.
        augment: the paper's x6 augmentation.
        grid_samples: rows of the sample grids (default: the profile's ``preview_samples``).
        **config: :class:`~generators.mi_gan.MIGANConfig` overrides (``g1_width=16``, ``n_critic=1``...).

    Returns:
        A :class:`MIGANRun`.

    Raises:
        DataError: bad data or ``init_from``. ValueError: bad options, incompatible resume.
    """

    prof = as_profile(profile)
    if prof.runtime.amp == "fp16":  # before any folder exists; train_phase's fit would refuse it too
        raise ValueError(_FP16_REFUSED)
    out = Path(out)
    t0 = time.perf_counter()
    source: dict[str, Any] | None = None
    if init_from is not None:
        model, src_meta = load_mi_gan(init_from)
        cfg = model.config
        arch = {f.name for f in dataclasses.fields(MIGANConfig)} - _TRAINING_OPTIONS
        clash = sorted(k for k in config if k in arch and config[k] != getattr(cfg, k))
        if clash:
            raise ValueError(f"--init-from {init_from}: cannot change the architecture ({', '.join(clash)}) of a trained MI-GAN")
        train_opts = {k: v for k, v in config.items() if k not in arch}
        defaults = config_for_profile(prof)
        cfg = MIGANConfig.from_dict({**cfg.to_dict(), "lr": defaults.lr, **train_opts})
        model.config = cfg
        source = {"init_from": str(init_from), "source_data": src_meta.get("data"), "source_seed": src_meta.get("seed")}
    else:
        cfg = config_for_profile(prof, **config)
        model = MIGAN(cfg, seed=seed)
    model.train()
    size = cfg.image_size
    builtin = str(data).startswith("synthetic-cells")
    opts: dict[str, Any] = {"size": size, "planes": cfg.planes}
    if builtin:
        n = n_train if n_train is not None else prof.migan_count(cell_type_of(str(data)))
        if split == "test":
            n = max(2, n // 4)
        opts.update(n=n, seed=data_seed)
    elif n_train is not None:
        raise ValueError("--n-train applies only to the built-in synthetic-cells")
    dataset = load_stacks(data, split=split, **opts)  # type: ignore[arg-type]
    stacks = stack_array(dataset)

    clean_orphan_temps(out)  # temp files of a killed run
    sched = schedule_for(prof)
    bs = batch_size or int(sched["batch_size"])
    if steps is not None:
        steps_g2 = steps if steps_g2 is None else steps_g2
    else:
        if sched["steps_g1"] is not None:
            steps = int(sched["steps_g1"])
        else:
            items = len(stacks) * (6 if augment else 1)
            steps = max(1, int(np.ceil(prof.migan.epochs * items / (bs * cfg.n_critic))))
        if steps_g2 is None:
            steps_g2 = int(sched["steps_g2"]) if sched["steps_g2"] is not None else steps
    if steps <= 0 or steps_g2 <= 0:
        raise ValueError(f"steps must be positive, got {steps} (G1) and {steps_g2} (G2)")
    meta = {"data": str(data), "split": split, "seed": seed, "data_seed": data_seed, "profile": prof.name, "config": cfg.to_dict(),
            "data_content": hashlib.sha256(np.ascontiguousarray(stacks).tobytes()).hexdigest()[:16],
            "n_train_stacks": int(len(stacks)), "batch_size": int(bs), "augment": bool(augment),
            "init_from": source}
    if resume:
        _check_resume(out, meta)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for phase in ("g1", "g2"):
        res = train_phase(model, stacks, phase, steps=steps if phase == "g1" else steps_g2, batch_size=bs, seed=seed,
                          out_dir=out / phase,
                          resume=resume, progress=progress, augment=augment, device=device, meta=meta,
                          runtime=prof.runtime)
        results[phase] = res
    model.eval()
    model_path = out / MODEL_FILE
    if not dist_info().is_main:  # under torchrun every rank holds the same weights; rank 0 writes
        return MIGANRun(out, model_path, {})
    n_grid = grid_samples or prof.preview_samples
    model_path = save_mi_gan(model.cpu(), model_path, meta)
    fake = model.sample(n_grid, seed=seed)
    write_stack_grid(out / "samples.png", fake)
    write_stack_grid(out / "real.png", stacks[:n_grid])
    record = {
        "generator": "mi-gan",
        "data": str(data),
        "split": split,
        "n_train_stacks": int(len(stacks)),
        "augmentation": "x6" if augment else "none",
        "steps_per_phase": {"g1": steps, "g2": steps_g2},
        "batch_size": bs,
        "config": cfg.to_dict(),
        "transfer": source,
        "phases": {p: {"device": r.device, "wall_time_s": r.wall_time_s, "start_step": r.start_step,
                       "world_size": r.world_size, "runtime": r.runtime, "data_wait_s": round(r.data_wait_s, 3),
                       **_summary(r.history)} for p, r in results.items()},
        "files": {"model": MODEL_FILE, "samples": "samples.png", "real": "real.png",
                  "checkpoints": ["g1/checkpoints/last.pt", "g2/checkpoints/last.pt"]},
        "wall_time_s": time.perf_counter() - t0,
        "provenance": provenance(profile=prof.name, seed=seed, runtime=results["g1"].runtime),
    }
    write_json(out / "run.json", record)
    return MIGANRun(out, model_path, record)


def stack_grid(stacks: np.ndarray, gap: int = 2) -> np.ndarray:
    """Tile stacks ``(N, P, H, W, 3)`` into one image: rows = cells, columns = planes I-5 .. I+5."""
    if stacks.ndim != 5 or stacks.shape[0] == 0:
        raise ValueError(f"stack_grid needs (N, P, H, W, 3) with N >= 1, got {stacks.shape}")
    n, p, h, w, _ = stacks.shape
    grid = np.full((n * (h + gap) - gap, p * (w + gap) - gap, 3), 255, np.uint8)
    for i in range(n):
        for k in range(p):
            grid[i * (h + gap):i * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = stacks[i, k]
    return grid


def write_stack_grid(path: str | Path, stacks: np.ndarray) -> Path:
    """Write :func:`stack_grid` as a PNG (atomically), like the paper's Fig. 4-7."""

    write_png(path, stack_grid(stacks))
    return Path(path)


def sample_to_folder(run: str | Path, out: str | Path, n: int, seed: int = 0, fmt: Literal["npy", "tif", "png"] = "npy",
                     batch_size: int = 64) -> Path:
    """Draw ``n`` stacks from a trained MI-GAN into a ``multifocus`` folder (+ ``manifest.csv``, ``run.json``).

    Returns:
        The folder, loadable with ``multifocus:PATH``.
    """

    if fmt not in ("npy", "tif", "png"):
        raise ValueError(f"format must be npy, tif or png, got {fmt!r}")
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    model, meta = load_mi_gan(run)
    out = Path(out)
    stacks = model.sample(n, seed=seed, batch_size=batch_size)
    rows = ["sample_id,path,generator,seed"]
    for i, s in enumerate(stacks):
        name = f"mi-gan-{i:05d}"
        target = out / (name if fmt == "png" else f"{name}.{fmt}")
        write_stack(target, s)
        rows.append(f"{name},{target.name},mi-gan,{seed}")
    write_text(out / "manifest.csv", "\n".join(rows) + "\n")
    write_json(out / "run.json", {"generator": "mi-gan", "run": str(run), "n": n, "seed": seed, "format": fmt,
                                  "trained_on": meta.get("data"), "provenance": provenance(profile=meta.get("profile"), seed=seed)})
    return out
