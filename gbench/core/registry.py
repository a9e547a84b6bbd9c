"""A small generic registry: name -> object, with duplicate and unknown-name errors, and an
optional contract (a base class) checked when an entry is registered."""
from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_NAME = re.compile(r"^[a-z0-9][a-z0-9\-]*$")


class Registry(Generic[T]):
    """Maps lowercase kebab-case names to objects (classes, factories, functions).

    Args:
        kind: what is registered, used in error messages ("dataset", "generator", ...).
        base: the contract of an entry, checked by :meth:`register`: an entry must be an instance
            of ``base``, a subclass of it, or a factory whose return annotation is a subclass of
            it. When ``base`` has a ``check_contract(cls)`` classmethod it is called on that
            class too (it raises TypeError naming what is missing).
    """

    def __init__(self, kind: str, base: type | None = None) -> None:
        self._kind = kind
        self._base = base
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj`` acts as a decorator."""
        if not _NAME.match(name):
            raise ValueError(f"{self._kind} name {name!r} must be lowercase kebab-case")

        def deco(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self._kind} {name!r} is already registered")
            if self._base is not None:
                self.check_entry(name, item)
            self._items[name] = item
            return item

        return deco if obj is None else deco(obj)

    def check_entry(self, name: str, item: Any) -> None:
        """Raise TypeError unless ``item`` meets the contract ``self._base``."""
        base = self._base
        if base is None or isinstance(item, base):
            return
        cls = item if isinstance(item, type) else _returned_class(item)
        if cls is None or not issubclass(cls, base):
            what = "class" if isinstance(item, type) else "factory (by its return annotation)"
            raise TypeError(f"{self._kind} {name!r}: {getattr(item, '__qualname__', item)!r} is not a "
                            f"{base.__name__} {what}")
        check = getattr(base, "check_contract", None)
        if check is not None:
            try:
                check(cls)
            except TypeError as exc:
                raise TypeError(f"{self._kind} {name!r}: {exc}") from None

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

    def unregister(self, name: str) -> None:
        """Remove ``name`` (KeyError with suggestions when absent); for throw-away test entries."""
        self.get(name)
        del self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def _returned_class(factory: Any) -> type | None:
    """The class a factory's return annotation names (None when it has none or it cannot be resolved)."""
    if not callable(factory):
        return None
    try:
        ret = typing.get_type_hints(factory).get("return")
    except Exception:  # an annotation that does not resolve: no contract can be read from it
        return None
    return ret if isinstance(ret, type) else None
