"""``python -m gbench`` (and ``torchrun --nproc_per_node N -m gbench ...``): the ``gbench`` command."""
from gbench.cli import main

if __name__ == "__main__":
    main()
