"""A small generic registry: name -> object, with duplicate and unknown-name errors, an optional
contract (a base class) checked when an entry is registered, the source of every entry, and
plugin discovery.

Plugins (see :mod:`gbench.api` for the public face):

* entry points: a registry made with ``group="gbench.generators"`` loads that group's entry points
  (``importlib.metadata.entry_points(group=...)``) on its *first lookup* (:meth:`Registry.get`,
  :meth:`Registry.names`, ``in``, iteration, ``len``), never at import. An entry point's object is
  registered under the entry point's name, or, when it is a module, importing it is the
  registration (it calls the ``register_*`` functions itself). Its source is
  ``"<distribution> <version>"``.
* ``GBENCH_PLUGINS``: modules or ``.py`` files (``os.pathsep``-separated) imported on the first
  lookup of any registry; ``--plugin`` on the command line imports them up front
  (:func:`load_plugin`). Their source is the module name or the file path.

A plugin that fails to import is named in one :class:`PluginWarning` and the rest works (an
explicit ``--plugin`` is an error instead: :func:`load_plugin` with ``strict=True``). A name that
clashes with another is refused naming both sources (ValueError), whoever registers it.

``gbench.core`` imports nothing from the project, so everything here is the standard library.
"""
from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib
import importlib.util
import os
import re
import sys
import typing
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_NAME = re.compile(r"^[a-z0-9][a-z0-9\-]*$")

__all__ = ["Registry", "PluginWarning", "load_plugin", "load_env_plugins", "current_source", "BUILTIN",
           "ENV_VAR", "plugin_sources"]

#: The source of an entry registered by gbench itself.
BUILTIN = "built-in"
#: Environment variable naming plugin modules or files (``os.pathsep``-separated).
ENV_VAR = "GBENCH_PLUGINS"

_SOURCES: list[str] = []  # stack: the plugin being imported now (its registrations carry it)
_ENV_LOADED: list[bool] = []
_LOADED_PLUGINS: dict[str, str] = {}  # spec (module or resolved file) -> source


class PluginWarning(UserWarning):
    """A plugin that could not be loaded (named with its error); gbench goes on without it."""


def current_source() -> str:
    """The source of registrations made now: the plugin being loaded, else ``"built-in"``."""
    return _SOURCES[-1] if _SOURCES else BUILTIN


def _default_source() -> str:
    """The source of a registration without one: ``built-in`` when gbench's own modules make it
    (imported while a plugin loads, they are still gbench's), else the plugin being loaded."""
    frame = sys._getframe(2)  # the caller of Registry.register
    module = str(frame.f_globals.get("__name__", "")) if frame is not None else ""
    if (module == "gbench" or module.startswith("gbench.")) and module != "gbench.api":
        return BUILTIN
    return current_source()


@contextlib.contextmanager
def _loading(source: str) -> Iterator[None]:
    _SOURCES.append(source)
    try:
        yield
    finally:
        _SOURCES.pop()


def plugin_sources() -> dict[str, str]:
    """Plugins loaded by :func:`load_plugin` so far: spec -> source."""
    return dict(_LOADED_PLUGINS)


class Registry(Generic[T]):
    """Maps lowercase kebab-case names to objects (classes, factories, functions).

    Args:
        kind: what is registered, used in error messages ("dataset", "generator", ...).
        base: the contract of an entry, checked by :meth:`register`: an entry must be an instance
            of ``base``, a subclass of it, or a factory whose return annotation is a subclass of
            it. When ``base`` has a ``check_contract(cls)`` classmethod it is called on that
            class too (it raises TypeError naming what is missing).
        group: the entry-point group whose plugins this registry discovers on its first lookup
            (``gbench.generators``); None: no discovery.
        adapt: ``adapt(name, obj) -> obj`` replaces the ``base`` check: it checks an entry
            (TypeError) and returns what is stored (e.g. a wrapper saying what kind of entry it is).
    """

    def __init__(self, kind: str, base: type | None = None, *, group: str | None = None,
                 adapt: Callable[[str, Any], Any] | None = None) -> None:
        self._kind = kind
        self._base = base
        self._group = group
        self._adapt = adapt
        self._items: dict[str, T] = {}
        self._sources: dict[str, str] = {}
        self._discovered = group is None

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def group(self) -> str | None:
        return self._group

    def register(self, name: str, obj: T | None = None, *, source: str | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj`` acts as a decorator.

        Args:
            source: where the entry comes from (default: the plugin being loaded now, else
                ``"built-in"``); shown by ``gbench list`` and in clash errors.

        Raises:
            ValueError: a name that is not kebab-case, or one already registered (naming both
                sources).
            TypeError: an entry that does not meet the contract.
        """
        if not _NAME.match(name):
            raise ValueError(f"{self._kind} name {name!r} must be lowercase kebab-case")
        src = source or _default_source()

        def deco(item: T) -> T:
            if name in self._items:
                old = self._sources.get(name, BUILTIN)
                if self._items[name] is item and old == src:
                    return item  # the same module imported twice (a file and its module name)
                raise ValueError(f"{self._kind} {name!r} from {src} is refused: the name is already registered "
                                 f"by {old}")
            stored = item
            if self._adapt is not None:
                stored = self._adapt(name, item)
            elif self._base is not None:
                self.check_entry(name, item)
            self._items[name] = stored
            self._sources[name] = src
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

    # -- discovery --------------------------------------------------------------------------
    def discover(self) -> None:
        """Load the plugins of :attr:`group` and of ``GBENCH_PLUGINS`` (once; every lookup calls it)."""
        load_env_plugins()
        if self._discovered:
            return
        self._discovered = True  # first: a plugin that looks names up while loading does not recurse
        for ep in _entry_points(self._group or ""):
            source = _dist_source(ep)
            try:
                with _loading(source):
                    obj = ep.load()
            except Exception as exc:  # any failure of the plugin's own code: name it, go on
                warnings.warn(f"plugin {ep.name!r} ({source}, entry point {ep.value!r} in {self._group}) failed to "
                              f"load and is skipped: {type(exc).__name__}: {_first_line(exc)}", PluginWarning,
                              stacklevel=2)
                continue
            if isinstance(obj, ModuleType):
                continue  # importing it registered what it has
            try:
                self.register(ep.name, obj, source=source)
            except TypeError as exc:
                warnings.warn(f"plugin {ep.name!r} ({source}) is skipped: {exc}", PluginWarning, stacklevel=2)

    def source(self, name: str) -> str:
        """Where entry ``name`` comes from: ``"built-in"``, ``"<distribution> <version>"`` or a plugin file/module."""
        self.get(name)
        return self._sources.get(name, BUILTIN)

    def sources(self) -> dict[str, str]:
        """Every name (sorted) and where it comes from."""
        self.discover()
        return {n: self._sources.get(n, BUILTIN) for n in sorted(self._items)}

    # -- lookups ----------------------------------------------------------------------------
    def get(self, name: str) -> T:
        """Return the object registered as ``name`` or raise KeyError with suggestions."""
        self.discover()
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
        self._sources.pop(name, None)

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.discover()
        return len(self._items)


# -------------------------------------------------------------------------------------- plugins

_ALL_ENTRY_POINTS: list[Any] = []  # every distribution's entry points, read once per process


def _entry_points(group: str) -> list[Any]:
    if not _ALL_ENTRY_POINTS:  # one scan of the installed distributions serves every group
        from importlib.metadata import entry_points

        _ALL_ENTRY_POINTS.append(entry_points())
    found: dict[tuple[str, str], Any] = {}
    for ep in _ALL_ENTRY_POINTS[0].select(group=group):  # a distribution seen twice on sys.path: once
        found.setdefault((ep.name, ep.value), ep)
    return list(found.values())


def _dist_source(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return f"entry point {ep.value}"
    return f"{dist.metadata['Name'] or dist.name} {dist.version}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def load_plugin(spec: str, *, strict: bool = True) -> str:
    """Import plugin ``spec``, a module name (``mypkg.gbench_plugin``) or a ``.py`` file; what it
    registers records the spec (the file's path, or the module name) as its source.

    Args:
        strict: raise ValueError (one line naming the plugin and the error) when it fails;
            otherwise warn (:class:`PluginWarning`) and go on.

    Returns:
        The source string (empty when a non-strict load failed).
    """
    path = Path(spec).expanduser()
    is_file = spec.endswith(".py") or os.sep in spec or path.is_file()
    key = str(path.resolve()) if is_file else spec
    if key in _LOADED_PLUGINS:
        return _LOADED_PLUGINS[key]
    source = key
    try:
        with _loading(source):
            if is_file:
                _import_file(path)
            else:
                importlib.import_module(spec)
    except Exception as exc:
        if isinstance(exc, ValueError) and "already registered" in str(exc):  # a clash: always refused
            raise ValueError(f"plugin {spec!r}: {_first_line(exc)}") from None
        msg = f"plugin {spec!r} failed to import: {type(exc).__name__}: {_first_line(exc)}"
        if strict:
            raise ValueError(msg) from None
        warnings.warn(msg + " (skipped)", PluginWarning, stacklevel=2)
        return ""
    _LOADED_PLUGINS[key] = source
    return source


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise FileNotFoundError(f"no such file {str(path)!r}")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"gbench_plugin_{re.sub(r'[^0-9a-zA-Z_]', '_', path.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {str(path)!r} as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_env_plugins() -> None:
    """Import the plugins ``GBENCH_PLUGINS`` names (once per process; failures warn and are skipped)."""
    if _ENV_LOADED:
        return
    _ENV_LOADED.append(True)
    for spec in filter(None, (s.strip() for s in os.environ.get(ENV_VAR, "").split(os.pathsep))):
        load_plugin(spec, strict=False)


def _returned_class(factory: Any) -> type | None:
    """The class a factory's return annotation names (None when it has none or it cannot be resolved)."""
    if not callable(factory):
        return None
    try:
        ret = typing.get_type_hints(factory).get("return")
    except Exception:  # an annotation that does not resolve: no contract can be read from it
        return None
    return ret if isinstance(ret, type) else None
