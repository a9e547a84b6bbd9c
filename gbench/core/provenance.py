"""How a result was made: versions, git revision, device, date, profile and seed."""
from __future__ import annotations

import datetime as _dt
import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["provenance", "git_revision", "package_versions"]

_PACKAGES = ("gbench", "torch", "torchvision", "numpy", "scipy", "scikit-image", "piq", "torchmetrics",
             "segmentation-models-pytorch", "pandas")


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@functools.lru_cache(maxsize=1)
def git_revision() -> str:
    """The git revision of the gbench checkout (with ``-dirty`` when modified), or ``unknown``."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _device() -> str:
    try:
        import torch  # lazy: provenance works without torch

        if torch.cuda.is_available():
            return f"cuda:{torch.cuda.get_device_name(0)}"
    except Exception:  # pragma: no cover - torch missing or broken CUDA
        pass
    return f"cpu:{platform.processor() or platform.machine()}"


def provenance(profile: str | None = None, seed: int | None = None, **extra: Any) -> dict[str, Any]:
    """A dictionary to store beside every result."""
    return {
        "profile": profile,
        "seed": seed,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_revision": git_revision(),
        "device": _device(),
        "python": platform.python_version(),
        "versions": package_versions(),
        **extra,
    }
