"""An example gbench plugin: ``tiny-painter`` (a frozen generator with its own weights file),
``tiny-seg`` (a segmenter) and ``colour-stats`` (a feature extractor).

Installed (``pip install -e examples/gbench-plugin-example``), gbench finds the three through the
entry points in ``pyproject.toml``. Not installed, ``gbench --plugin
examples/gbench-plugin-example/src/gbench_plugin_example/plugin.py ...`` registers them.
"""
__version__ = "0.1.0"
