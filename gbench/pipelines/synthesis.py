"""Drawing a synthetic set (S3k, S10k) with a trained generator: ``gbench synthesize``.

Sample ``k`` of a set: the instance map ``gbench.data.masks.synthesize_instance_map(size, seed, k,
stats)`` (nucleus-like polygons, Hou et al. 2019, as Sharp-GAN uses; ``stats`` fitted to the
real training set with ``fit_mask_stats`` when ``--data`` is given, else the defaults), turned
into the generator's conditioning map and run through the generator in eval mode (BatchNorm
running statistics, no dropout; pix2pix instead keeps dropout and batch statistics at test time,
which would make an image depend on the other images of its batch).

Layout of ``out`` (the ``folder`` dataset layout, one flat split: load it with ``split="all"``)::

    images/<sample_id>.png   RGB, 8 bit
    labels/<sample_id>.png   instance ids, 16-bit gray (0 = background)
    manifest.csv             sample_id, index, generator, conditioning, checkpoint_sha256, seed,
                             size, image_path, label_path
    run.json                 settings, mask statistics, provenance, images/s

``sample_id = <generator>-s<seed>-<k:06d>``. A sample is complete when both PNGs exist (each is
written atomically). Calling :func:`synthesize` again (``gbench synthesize --resume``) skips
complete samples and fills in the rest; a larger ``--count`` extends the set. ``out`` made with another generator, checkpoint,
seed, size or mask statistics is refused, and so is a ``--count`` smaller than the samples already
there (the extra images would lie outside the manifest; nothing is deleted). Labels depend only on ``(seed, k, stats, size)``;
images on those and the checkpoint (up to float rounding in batched convolutions: at most one
gray level between different batch sizes, identical for the same batch size).

A set is *complete* (usable by ``gbench segment``, see ``gbench.segmentation.sets``) when its
``run.json`` says ``complete`` and ``manifest.csv`` lists exactly the images and labels on disk.
``run.json`` says ``running`` from the first written sample until the last one and the manifest
are written. The generator's outputs are checked
(:func:`gbench.metrics.failures.output_failure` on a first batch of different maps, the check
``quality --generator`` records): NaN/inf outputs are refused before anything is written; constant
or near-constant outputs are warned about and recorded as ``output_check`` in ``run.json`` (a
briefly trained smoke generator draws near-flat images; ``segment`` names such a set when it uses
it), and a NaN/inf batch later on
stops the run with the set still marked ``running``. A checkpoint whose training run is recorded as
failed (``status: failed`` in the ``run.json`` beside its ``checkpoints/`` folder) is named in a
warning, and in the set's ``run.json`` (``source_run_failure``).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gbench import generators
from gbench.core.errors import DataError
from gbench.core.fileio import clean_orphan_temps, folder_lock, write_json, write_text
from gbench.core.hashing import file_sha256
from gbench.core.profiles import Profile, as_profile
from gbench.core.provenance import provenance
from gbench.data.io import LABEL_SUFFIXES, read_label, write_png
from gbench.data.masks import DEFAULT_STATS, fit_mask_stats, synthesize_instance_map
from gbench.data.resolve import resolve_dataset
from gbench.engine import select_device
from gbench.generators.frozen import GeneratorOutputError
from gbench.metrics.failures import output_failure

__all__ = ["synthesize", "SynthResult", "file_sha256", "sample_id", "MANIFEST_COLUMNS"]

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("sample_id", "index", "generator", "conditioning", "checkpoint_sha256", "seed", "size",
                    "image_path", "label_path")


def sample_id(generator: str, seed: int, index: int) -> str:
    return f"{generator}-s{seed}-{index:06d}"


@dataclass(frozen=True)
class SynthResult:
    """What a synthesis run did.

    Attributes:
        out: the set's folder.
        count: samples in the set.
        generated: samples made by this call (the rest were already complete).
        seconds: wall time of this call (loading the checkpoint and fitting mask statistics included).
        images_per_s: generated per second of the generation loop (mask drawing, conditioning,
            generator and PNG writing; setup excluded).
        generator_images_per_s: generated / seconds spent in the generator alone.
        manifest: path of manifest.csv.
    """

    out: Path
    count: int
    generated: int
    seconds: float
    images_per_s: float
    generator_images_per_s: float
    manifest: Path


def _settings(name: str, module: Any, sha: str, seed: int, size: int, stats: Any) -> dict[str, Any]:
    return {"generator": name, "conditioning": module.conditioning, "checkpoint_sha256": sha, "seed": int(seed),
            "size": int(size), "mask_stats": dataclasses.asdict(stats)}


def _check_existing(out: Path, settings: dict[str, Any]) -> None:
    run = out / "run.json"
    if run.is_file():
        try:
            old = json.loads(run.read_text(encoding="utf-8"))["settings"]
        except (ValueError, KeyError, TypeError):
            raise DataError(run, "unreadable run.json of an earlier synthesis; use another --out") from None
        diff = [k for k in settings if json.dumps(old.get(k), sort_keys=True) != json.dumps(settings[k], sort_keys=True)]
        if diff:
            raise DataError(out, f"holds a set made with different {', '.join(diff)}; use another --out")
    manifest = out / "manifest.csv"
    if manifest.is_file():
        try:
            text = manifest.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataError(manifest, "not UTF-8 text: not a manifest of gbench synthesize; use another --out") from None
        for line, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):
            for key in ("generator", "checkpoint_sha256", "seed"):
                if str(row.get(key)) != str(settings[key]):
                    raise DataError(manifest, f"line {line}: {key} {row.get(key)!r} differs from this run's "
                                              f"{settings[key]!r}; use another --out")


def _write_manifest(out: Path, settings: dict[str, Any], indices: list[int]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MANIFEST_COLUMNS)
    for k in indices:
        sid = sample_id(settings["generator"], settings["seed"], k)
        w.writerow([sid, k, settings["generator"], settings["conditioning"], settings["checkpoint_sha256"],
                    settings["seed"], settings["size"], f"images/{sid}.png", f"labels/{sid}.png"])
    return write_text(out / "manifest.csv", buf.getvalue())


def synthesize(
    name: str,
    checkpoint: str | Path | None,
    count: int,
    out: str | Path,
    *,
    seed: int = 0,
    profile: Profile | str = "demo",
    data: str | None = None,
    stats: Any = None,
    size: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    progress: bool = True,
    data_seed: int = 0,
    masks: str | Path | None = None,
) -> SynthResult:
    """Write ``count`` synthetic (image, instance label) pairs to ``out``.

    Args:
        name: generator name; must match the checkpoint's.
        checkpoint: ``last.pt`` from ``gbench train-gen``.
        count: samples in the set (indices ``0 .. count-1``).
        out: set folder.
        seed: mask seed: sample ``k`` depends only on ``(seed, k)`` (and the other settings).
        profile: a :class:`~gbench.core.profiles.Profile` or its name; its ``synthesis`` section gives
            the default image size and batch size.
        data: fit the mask statistics to this dataset's training split (recommended: the
            generator's training data); None uses ``gbench.data.masks.DEFAULT_STATS``.
        data_seed: draws a built-in ``data`` (which tiles the statistics are fitted to).
        stats: a ``MaskStats`` to use instead (overrides ``data``).
        size: image side (default: the profile's ``synthesis.image_size``).
        batch_size: generator batch (default: the profile's ``synthesis.batch_size``).
        device: None picks CUDA when available.
        progress: progress bar.
        masks: draw from the user's own instance maps instead: a folder of label files (``labels/``
            inside it when present, e.g. ``gbench maps sample``'s output; .png .tif .npy .mat), in
            file-name order; sample ``k`` is the ``k``-th map (``run.json`` lists ``mask_names``),
            its label file a copy of that map. All maps share one size; ``count`` <= their number.

    Returns:
        A :class:`SynthResult`.

    Raises:
        DataError: unreadable checkpoint, ``out`` holding another set, another synthesize
            writing ``out`` right now (``gbench.core.fileio.folder_lock``).
        ValueError: bad counts or sizes (a size the generator cannot make is found by running
            it once before anything is written), generator name not matching the checkpoint.
    """

    if count <= 0:
        raise ValueError(f"--count must be positive, got {count}")
    prof = as_profile(profile)
    mask_files = _mask_files(masks, count) if masks is not None else None
    if mask_files is not None:
        size = _mask_size(mask_files, size)
    size = int(size or prof.synthesis.image_size)
    bs = int(batch_size or prof.synthesis.batch_size)
    if size <= 0 or bs <= 0:
        raise ValueError("size and batch size must be positive")
    t0 = time.perf_counter()
    dev = select_device(device)
    module = generators.load(checkpoint, name, dev)
    sha = file_sha256(checkpoint) if checkpoint is not None else ""  # None: a frozen generator's default weights
    if stats is None and data is not None:
        stats = fit_mask_stats(resolve_dataset(data, "train", prof, data_seed), seed=seed)
    stats = stats or DEFAULT_STATS
    out = Path(out)
    settings = _settings(name, module, sha, seed, size, stats)
    if mask_files is not None:
        settings["masks"] = _masks_digest(mask_files)
    _check_existing(out, settings)
    settings_check = _check_generates(module, name, size, seed, stats, dev, checkpoint)  # bad --size / NaN: no file
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):  # a second synthesize into the same folder is refused while this one runs
        _check_existing(out, settings)  # again, under the lock
        clean_orphan_temps(out)  # temp files of a killed run
        return _synthesize_locked(name, module, count, out, seed, prof, data, stats, size, bs, dev, settings,
                                  checkpoint, progress, t0, data_seed, masks=mask_files, output_check=settings_check)


#: Maps of the first-batch output check (:func:`_check_generates`).
CHECK_MAPS = 4


def _source_failure(checkpoint: str | Path | None) -> str:
    """The failure recorded for the training run of ``checkpoint`` (its ``run.json`` status), or ""."""
    if checkpoint is None:
        return ""
    run = Path(checkpoint).parent.parent / "run.json"
    try:
        doc = json.loads(run.read_text(encoding="utf-8")) if run.is_file() else {}
    except (OSError, ValueError):
        return ""
    if isinstance(doc, dict) and doc.get("status") == "failed":
        return str(doc.get("failure") or "failed")
    return ""


def _check_generates(module: Any, name: str, size: int, seed: int, stats: Any, dev: Any,
                     checkpoint: str | Path | None = None) -> str:
    """Run the generator on a few maps of ``size``: refuse a size it cannot make, and NaN/inf outputs
    (:func:`gbench.metrics.failures.output_failure`), in one line. Returns the failed check of constant
    or near-constant outputs (warned about; recorded in ``run.json`` as ``output_check``), else ""."""

    inst = [synthesize_instance_map(size, seed, k, stats=stats) for k in range(CHECK_MAPS)]
    cond = torch.from_numpy(np.stack([module.condition_map(m) for m in inst])).to(dev)
    try:
        with torch.no_grad():
            fake = module.generate(cond)
    except GeneratorOutputError:
        raise  # a frozen plugin's bad output: its own one line, naming the plugin
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"--size {size}: generator {name!r} cannot make images of this size "
                         f"({str(exc).splitlines()[0]})") from None
    if tuple(fake.shape[-2:]) != (size, size):
        raise ValueError(f"--size {size}: generator {name!r} made {tuple(fake.shape[-2:])} images instead")
    failure = output_failure(fake.float().cpu().numpy())
    if "NaN" in failure:
        raise DataError(checkpoint, f"generator {name!r} fails the output check ({failure}); no set written")
    if failure:  # constant / near-constant images: named and recorded (as quality --generator records them)
        log.warning("%s: generator %r fails the output check (%s); the set records it in run.json (output_check)",
                    checkpoint if checkpoint is not None else name, name, failure)
    return failure


def _synthesize_locked(name: str, module: Any, count: int, out: Path, seed: int, prof: Profile, data: str | None,
                       stats: Any, size: int, bs: int, dev: Any, settings: dict[str, Any], checkpoint: str | Path,
                       progress: bool, t0: float, data_seed: int = 0, masks: list[Path] | None = None,
                       output_check: str = "") -> SynthResult:
    def paths(k: int) -> tuple[Path, Path]:
        sid = sample_id(name, seed, k)
        return out / "images" / f"{sid}.png", out / "labels" / f"{sid}.png"

    prefix = f"{name}-s{seed}-"
    extra = sorted({int(q.stem[len(prefix):]) for sub in ("images", "labels") if (out / sub).is_dir()
                    for q in (out / sub).glob(f"{prefix}*.png") if q.stem[len(prefix):].isdigit()} - set(range(count)))
    if extra:
        raise DataError(out, f"holds {count + len(extra)} samples, more than --count {count}: a smaller set would "
                        f"leave {len(extra)} images outside its manifest (nothing is deleted); use --count "
                        f"{max(extra) + 1} or more, another --out, or --overwrite")
    todo = [k for k in range(count) if not all(p.is_file() for p in paths(k))]
    done_before = count - len(todo)
    source_failure = _source_failure(checkpoint)
    if source_failure:
        log.warning("%s: the training run of this checkpoint is recorded as failed (%s); the set is marked so "
                    "in its run.json", checkpoint, source_failure)
    run_info = {"command": "synthesize", "settings": settings, "checkpoint": str(checkpoint), "count": count,
                "data_seed": data_seed,
                "data": data, "profile_settings": prof.to_dict(), "batch_size": bs,
                "source_run_failure": source_failure, "output_check": output_check}
    if masks is not None:
        run_info["mask_names"] = [p.stem for p in masks[:count]]
    write_json(out / "run.json", {**run_info, "status": "running", "provenance": provenance(profile=prof.name, seed=seed)})

    gen_seconds = 0.0
    t_loop = time.perf_counter()

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[rate]}"))
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(f"synthesize {name}", total=count, completed=done_before, rate="")
        for start in range(0, len(todo), bs):
            chunk = todo[start:start + bs]
            maps = [_read_mask(masks[k], size) if masks is not None else synthesize_instance_map(size, seed, k, stats=stats)
                    for k in chunk]
            cond = torch.from_numpy(np.stack([module.condition_map(m) for m in maps])).to(dev)
            tg = time.perf_counter()
            with torch.no_grad():
                fake = module.generate(cond)
            if not bool(torch.isfinite(fake).all()):  # the set stays "running": never marked complete
                raise DataError(checkpoint, f"generator {name!r} made NaN/inf outputs for samples {chunk[0]}.."
                                f"{chunk[-1]}; {out} is left incomplete (run.json status 'running')")
            img = (fake.float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            gen_seconds += time.perf_counter() - tg
            for k, inst, rgb in zip(chunk, maps, img):
                if inst.max(initial=0) > np.iinfo(np.uint16).max:
                    raise ValueError(f"sample {k}: {int(inst.max())} nuclei do not fit a 16-bit label PNG")
                ipath, lpath = paths(k)
                write_png(lpath, inst.astype(np.uint16))
                write_png(ipath, np.ascontiguousarray(rgb))
            made = start + len(chunk)
            rate = made / max(time.perf_counter() - t_loop, 1e-9)
            bar.update(task, completed=done_before + made, rate=f"{rate:.2f} img/s")
            if (start // bs) % 20 == 19:
                _write_manifest(out, settings, [k for k in range(count) if all(p.is_file() for p in paths(k))])
    loop_seconds = time.perf_counter() - t_loop
    manifest = _write_manifest(out, settings, list(range(count)))
    seconds = time.perf_counter() - t0
    n = len(todo)
    result = SynthResult(out, count, n, seconds, n / loop_seconds if n else 0.0,
                         n / gen_seconds if gen_seconds > 0 else 0.0, manifest)
    write_json(out / "run.json", {**run_info, "status": "complete", "generated_this_run": n,
                                  "seconds": seconds, "setup_seconds": seconds - loop_seconds,
                                  "images_per_s": result.images_per_s,
                                  "generator_images_per_s": result.generator_images_per_s,
                                  "device": str(dev), "provenance": provenance(profile=prof.name, seed=seed)})
    return result


def _mask_files(masks: str | Path, count: int) -> list[Path]:
    """The label files of a ``--masks`` folder (``labels/`` inside it when present), in name order."""
    root = Path(masks)
    if not root.is_dir():
        raise DataError(root, "--masks: no such folder")
    base = root / "labels" if (root / "labels").is_dir() else root
    files = sorted(p for p in base.iterdir() if p.is_file() and p.suffix.lower() in LABEL_SUFFIXES
                   and not p.name.startswith("."))
    if not files:
        raise DataError(base, f"--masks: no instance maps ({', '.join(LABEL_SUFFIXES)})")
    stems = [p.stem for p in files]
    if len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise DataError(base, f"--masks: two maps share the name {dup!r}")
    if count > len(files):
        raise DataError(base, f"--masks: {len(files)} instance maps, fewer than the {count} samples asked for")
    return files


def count_masks(masks: str | Path) -> int:
    """How many instance maps a ``--masks`` folder holds (``gbench synthesize --masks`` without ``--count``)."""
    return len(_mask_files(masks, 0))


def _mask_size(files: list[Path], size: int | None) -> int:
    """The side of the first map (square); ``size`` must agree when given."""
    h, w = read_label(files[0]).shape
    if h != w:
        raise DataError(files[0], f"--masks: maps must be square, this one is {w}x{h}")
    if size is not None and int(size) != h:
        raise ValueError(f"--size {size} differs from the masks' size {h}; leave --size out with --masks")
    return int(h)


def _read_mask(path: Path, size: int) -> np.ndarray:
    inst = read_label(path)
    if inst.shape != (size, size):
        raise DataError(path, f"--masks: {inst.shape[1]}x{inst.shape[0]}, the other maps are {size}x{size}")
    return inst


def _masks_digest(files: list[Path]) -> str:
    """sha256 over the maps' names and bytes: a set is resumed only from the same masks."""
    import hashlib

    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode("utf-8") + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()[:16]
