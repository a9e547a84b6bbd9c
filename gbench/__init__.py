"""gbench: evaluation and benchmarking of GAN-synthesized histopathology and cytology images."""
__version__ = "0.1.0"
