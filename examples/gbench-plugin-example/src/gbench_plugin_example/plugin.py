"""For ``gbench --plugin .../gbench_plugin_example/plugin.py`` (the package not installed): registers
what the entry points in ``pyproject.toml`` declare, through the public API."""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import gbench_plugin_example  # noqa: F401
except ImportError:  # not installed: import it from its source folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gbench.api import register_extractor, register_generator, register_segmenter
from gbench_plugin_example.extractor import colour_stats
from gbench_plugin_example.generator import TinyPainter
from gbench_plugin_example.segmenter import SEGMENTER

register_generator("tiny-painter", TinyPainter)
register_segmenter("tiny-seg", SEGMENTER)
register_extractor("colour-stats", colour_stats)
