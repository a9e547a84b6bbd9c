"""gbench-diffusion: a mask-conditioned DDPM as a gbench generator plugin.

``ddpm`` (trainable: ``gbench train-gen ddpm``, ``reproduce --generator ...,ddpm``) and
``ddpm-pretrained`` (frozen: a ``last.pt`` of ``train-gen`` or a ``save_pretrained`` folder,
``quality --generator ddpm-pretrained --checkpoint X``). See :mod:`gbench_diffusion.ddpm`.

Installed (``pip install --no-deps -e examples/gbench-diffusion``), gbench finds both through the
entry points in ``pyproject.toml``; not installed, ``gbench --plugin
examples/gbench-diffusion/src/gbench_diffusion/plugin.py ...`` registers them.
"""
__version__ = "0.1.0"
