"""For ``gbench --plugin .../gbench_diffusion/plugin.py`` (the package not installed): registers
what the entry points in ``pyproject.toml`` declare, through the public API."""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import gbench_diffusion  # noqa: F401
except ImportError:  # not installed: import it from its source folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gbench.api import register_generator
from gbench_diffusion.ddpm import DDPMPretrained, ddpm

register_generator("ddpm", ddpm)
register_generator("ddpm-pretrained", DDPMPretrained)
