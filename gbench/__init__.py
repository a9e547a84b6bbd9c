"""gbench: evaluation and benchmarking of GAN-synthesized histopathology and cytology images."""
import os as _os

# OpenMP threads that spin while waiting make torch on a shared 2-core machine up to 20x slower
# (measured: a demo-size Sharp-GAN step took 5.8 s with spinning threads, 0.32 s passive). The
# variable must be set before torch loads libgomp; a value set by the user wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
