"""Preview sheet: image, binary mask, distance map and contour map for a few samples."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gbench.core.fileio import atomic_path
from gbench.data.conditioning import binary_mask, contour_map, distance_map
from gbench.data.labels import relabel_sequential
from gbench.data.types import Sample

__all__ = ["preview_sheet", "instance_colors"]


def instance_colors(instances: np.ndarray, seed: int = 0) -> np.ndarray:
    """Random but stable colours per nucleus id, black background: (H, W, 3) uint8."""

    lab, n = relabel_sequential(instances)
    rng = np.random.default_rng(seed)
    palette = np.concatenate([np.zeros((1, 3)), 60 + rng.random((n, 3)) * 195]).astype(np.uint8)
    return palette[lab]


def preview_sheet(samples: list[Sample], out: str | Path, title: str | None = None, dpi: int = 100) -> Path:
    """Write a PNG sheet with one row per sample and the columns image, instances, binary mask,
    distance map and contour map (contours drawn over the image). Written atomically."""
    import matplotlib  # lazy: matplotlib: the Agg backend is chosen first

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib: the Agg backend is chosen first

    if not samples:
        raise ValueError("preview_sheet needs at least one sample")
    cols = ["image", "instances", "binary mask", "distance map", "contour map"]
    fig, axes = plt.subplots(len(samples), len(cols), figsize=(2.6 * len(cols), 2.6 * len(samples) + 0.4),
                             squeeze=False)
    for r, s in enumerate(samples):
        contour = contour_map(s.instances).astype(bool)
        over = s.image.copy()
        over[contour] = (0, 255, 0)
        panels = [s.image, instance_colors(s.instances), binary_mask(s.instances), distance_map(s.instances), over]
        for c, (ax, panel) in enumerate(zip(axes[r], panels)):
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, interpolation="nearest",
                      vmin=0, vmax=1 if panel.ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(cols[c], fontsize=10)
            if c == 0:
                ax.set_ylabel(s.name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return out
