"""Per-dataset statistics: counts, sizes, nuclei per image, nucleus areas."""
from __future__ import annotations

from typing import Any

import numpy as np
from rich.progress import track

from gbench.data.labels import relabel_sequential
from gbench.data.types import Dataset

__all__ = ["summarize", "per_image_stats"]


def per_image_stats(dataset: Dataset, progress: bool = False) -> list[dict[str, Any]]:
    """One row per sample: name, height, width, nuclei, mean/median nucleus area, foreground fraction."""
    rows = []
    it = dataset
    if progress:
        it = track(dataset, description=f"reading {dataset.name}", total=len(dataset), transient=True)
    for s in it:
        lab, n = relabel_sequential(s.instances)
        areas = np.bincount(lab.ravel(), minlength=n + 1)[1:]
        rows.append({
            "name": s.name, "height": s.shape[0], "width": s.shape[1], "nuclei": n,
            "mean_area": float(areas.mean()) if n else 0.0,
            "median_area": float(np.median(areas)) if n else 0.0,
            "foreground": float((lab > 0).mean()),
            "_areas": areas,
        })
    return rows


def summarize(dataset: Dataset, progress: bool = False) -> dict[str, Any]:
    """Dataset summary as a flat dictionary (also the rows used by ``gbench data inspect``)."""
    rows = per_image_stats(dataset, progress=progress)
    if not rows:
        return {"dataset": dataset.name, "split": dataset.split, "images": 0}
    areas = np.concatenate([r.pop("_areas") for r in rows]) if rows else np.zeros(0)
    nuclei = np.array([r["nuclei"] for r in rows])
    hs = np.array([r["height"] for r in rows])
    ws = np.array([r["width"] for r in rows])
    return {
        "dataset": dataset.name,
        "split": dataset.split,
        "images": len(rows),
        "nuclei": int(nuclei.sum()),
        "height_min": int(hs.min()), "height_max": int(hs.max()),
        "width_min": int(ws.min()), "width_max": int(ws.max()),
        "nuclei_per_image_mean": float(nuclei.mean()),
        "nuclei_per_image_min": int(nuclei.min()),
        "nuclei_per_image_max": int(nuclei.max()),
        "area_mean": float(areas.mean()) if areas.size else 0.0,
        "area_median": float(np.median(areas)) if areas.size else 0.0,
        "area_p05": float(np.percentile(areas, 5)) if areas.size else 0.0,
        "area_p95": float(np.percentile(areas, 95)) if areas.size else 0.0,
        "foreground_mean": float(np.mean([r["foreground"] for r in rows])),
        "rows": rows,
    }
