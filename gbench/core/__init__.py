"""Core types shared by every gbench package: registries and small value types (no I/O at import)."""
from gbench.core.registry import Registry

__all__ = ["Registry"]
