"""``python -m gbench.cli``: the same as ``python -m gbench`` (kept for commands written that way)."""
from gbench.cli import main

if __name__ == "__main__":
    main()
