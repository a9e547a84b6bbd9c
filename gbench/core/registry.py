"""A small generic registry: name -> object, with duplicate and unknown-name errors."""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_NAME = re.compile(r"^[a-z0-9][a-z0-9\-]*$")


class Registry(Generic[T]):
    """Maps lowercase kebab-case names to objects (classes, factories, functions).

    Args:
        kind: what is registered, used in error messages ("dataset", "generator", ...).
    """

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj`` acts as a decorator."""
        if not _NAME.match(name):
            raise ValueError(f"{self._kind} name {name!r} must be lowercase kebab-case")

        def deco(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self._kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return deco if obj is None else deco(obj)

    def get(self, name: str) -> T:
        """Return the object registered as ``name`` or raise KeyError with suggestions."""
        try:
            return self._items[name]
        except KeyError:
            hint = difflib.get_close_matches(name, list(self._items), n=3)
            extra = f"; did you mean {', '.join(hint)}?" if hint else ""
            raise KeyError(
                f"unknown {self._kind} {name!r}{extra} (known: {', '.join(sorted(self._items))})"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
