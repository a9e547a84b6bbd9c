"""Command-line option values checked once, where they are parsed.

``parse_set_options(["ngf=32", "beta=0.5"], Pix2PixConfig)`` reads ``--set KEY=VALUE`` items
against the field types of a config dataclass: an ``int`` field takes a whole number (``8``, not
``8.5``, ``true`` or ``abc``), a ``float`` field a finite number (never NaN or inf), a ``bool``
``true``/``false``, a ``Literal`` one of its values, a ``tuple[float, float]`` a JSON list of two
finite numbers; an unknown key names the known ones. Every error is one line that names the
option. The config's own ``__post_init__`` then checks ranges (``ngf > 0`` ...).

Documented ranges (:data:`SET_RANGES`), checked before the config is built: ``image_size`` 32 to
2048 pixels; widths (``ngf``, ``ndf``, ``g1_width`` ...) 1 to 1024 channels; learning rates in
[0, 1]; loss weights (``lambda_l1``, ``gp_lambda``, ``g2_l1``) 0 to 1e6; probabilities and Adam betas
in [0, 1); ``init_seed`` a seed (0 to 2**32 - 1); the other counts as listed there. A size that
cannot fit in this machine's memory (:func:`check_fits_memory`) is refused as well, in one line,
before anything is allocated.

Seeds (``--seed``, ``--data-seed``, ``--seeds`` ...) are 0 to 2**32 - 1 (:func:`check_seed`): numpy's
and torch's generators take them as they are, and the records store them without overflow.

Also here: :func:`check_device` (``cpu``, ``cuda``, ``cuda:N``, ``mps``), :func:`check_finite`
and :func:`check_positive` for plain numeric options.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Union

import torch

__all__ = ["parse_set_options", "parse_value", "config_class", "check_device", "check_finite", "check_positive",
           "OptionError", "check_seed", "SEED_MAX", "SET_RANGES", "check_set_range", "check_fits_memory"]

#: The largest seed: 2**32 - 1 (numpy's legacy seeding and many tools take 32-bit seeds).
SEED_MAX = 2**32 - 1
_WIDTHS = ("ngf", "ndf", "g1_width", "g2_width", "d1_width", "d2_width", "resnet_channels", "latent_channels")
#: ``--set`` keys with a documented range: key -> (low, high), both included (``None``: unbounded).
SET_RANGES: dict[str, tuple[float | None, float | None]] = {
    "image_size": (32, 2048),
    **{k: (1, 1024) for k in _WIDTHS},
    "z_dim": (1, 4096),
    "n_layers_d": (1, 8),
    "resnet_blocks": (0, 64),
    "n_dropout": (0, 16),
    "planes": (3, 64),
    "n_critic": (1, 100),
    "g2_n_critic": (1, 100),
    "resize_kernel": (1, 31),
    "lr": (0.0, 1.0),
    "g2_lr": (0.0, 1.0),
    "lr_decay": (0.0, 1.0),
    "dropout": (0.0, 0.999),
    "leaky_slope": (0.0, 1.0),
    "init_gain": (0.0, 10.0),
    "lambda_l1": (0.0, 1e6),
    "gp_lambda": (0.0, 1e6),
    "g2_l1": (0.0, 1e6),
    "adam_betas": (0.0, 0.999999),
    "betas": (0.0, 0.999999),
    "init_seed": (0, SEED_MAX),
}

_INT_RE = re.compile(r"^[+-]?\d+$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null"}


class OptionError(ValueError):
    """A bad option value (one line naming the option; exit 2 on the command line)."""


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "a whole number"
    if tp is float:
        return "a finite number"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        return "a JSON list such as [0.5, 0.999]"
    return str(tp)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(f"{where}: expected a finite number, got {value!r}")
    if not math.isfinite(float(value)):
        raise OptionError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _from_json(value: Any, tp: Any, where: str) -> Any:
    """Check an already-decoded JSON value (an element of a list) against ``tp``."""
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise OptionError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise OptionError(f"{where}: expected a whole number, got {value!r}")
    if tp is float:
        return _number(value, where)
    if tp is str:
        if isinstance(value, str):
            return value
        raise OptionError(f"{where}: expected a string, got {value!r}")
    return parse_value(json.dumps(value), tp, where)


def parse_value(text: str, tp: Any, where: str) -> Any:
    """Parse one option value ``text`` as type ``tp`` (``where`` names it in errors).

    Raises:
        OptionError: the text is not a value of ``tp`` (one line naming ``where``).
    """
    text = text.strip()
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if type(None) in args and text.lower() in _NONE:
            return None
        errors = []
        for a in inner:
            try:
                return parse_value(text, a, where)
            except OptionError as exc:
                errors.append(str(exc))
        raise OptionError(errors[0] if len(errors) == 1 else
                          f"{where}: expected {' or '.join(_describe(a) for a in inner)}, got {text!r}")
    if tp is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise OptionError(f"{where}: expected true or false, got {text!r}")
    if tp is int:
        if not _INT_RE.match(text):
            raise OptionError(f"{where}: expected a whole number, got {text!r}")
        return int(text)
    if tp is float:
        try:
            value = float(text)
        except ValueError:
            raise OptionError(f"{where}: expected a finite number, got {text!r}") from None
        if not math.isfinite(value):
            raise OptionError(f"{where}: expected a finite number, got {text!r}")
        return value
    if tp is str:
        if not text:
            raise OptionError(f"{where}: expected a non-empty string")
        return text
    if origin is Literal:
        for a in args:
            if str(a) == text:
                return a
        raise OptionError(f"{where}: expected one of {', '.join(str(a) for a in args)}, got {text!r}")
    if origin in (tuple, list) or tp in (tuple, list):
        try:
            value = json.loads(text)
        except ValueError:
            raise OptionError(f"{where}: expected {_describe(tp)}, got {text!r}") from None
        if not isinstance(value, list):
            raise OptionError(f"{where}: expected {_describe(tp)}, got {text!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise OptionError(f"{where}: expected a list of {len(args)} values, got {len(value)}")
            return tuple(_from_json(v, a, where) for v, a in zip(value, args))
        elem = args[0] if args else Any
        out = [_from_json(v, elem, where) for v in value]
        return tuple(out) if origin is tuple or tp is tuple else out
    # an unannotated or unusual type: JSON when it parses (finite numbers only), else the string
    try:
        value = json.loads(text)
    except ValueError:
        return text
    _check_json_finite(value, where)
    return value


def _check_json_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise OptionError(f"{where}: expected a finite number, got {value!r}")
    if isinstance(value, list):
        for v in value:
            _check_json_finite(v, where)
    if isinstance(value, dict):
        for v in value.values():
            _check_json_finite(v, where)


def config_class(factory: Any) -> type | None:
    """The config dataclass behind a generator factory, from its type hints (None if unknown).

    ``factory`` returns a module class whose ``__init__`` takes the config dataclass
    (``gan_dist(**overrides) -> Pix2PixModule``, ``Pix2PixModule(config: Pix2PixConfig)``).
    """
    if dataclasses.is_dataclass(factory) and isinstance(factory, type):
        return factory
    try:
        ret = typing.get_type_hints(factory).get("return")
        if ret is None:
            return None
        if dataclasses.is_dataclass(ret):
            return ret
        hints = typing.get_type_hints(ret.__init__)
    except Exception:  # unresolved annotations: fall back to untyped parsing
        return None
    for name, tp in hints.items():
        if name != "return" and dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return tp
    return None


def parse_set_options(items: Iterable[str] | None, cls: type | None = None, *, option: str = "--set",
                      what: str = "generator option", allowed: Iterable[str] | None = None) -> dict[str, Any]:
    """``["ngf=32", "beta=0.5"]`` -> ``{"ngf": 32, "beta": 0.5}``, typed by ``cls``'s fields.

    Args:
        items: ``KEY=VALUE`` strings.
        cls: a config dataclass whose field types the values must have; None parses each value
            as JSON when it parses (finite numbers only), else keeps the string.
        option: the option's name in messages.
        what: what a key is, in messages (``unknown generator option(s) ...``).
        allowed: restrict the keys to these (default: every field of ``cls``).

    Raises:
        OptionError: malformed item, repeated or unknown key, or a value of the wrong type.
    """
    hints: Mapping[str, Any] = {}
    if cls is not None:
        try:
            resolved = typing.get_type_hints(cls)
        except Exception:
            resolved = {}
        hints = {f.name: resolved.get(f.name, Any) for f in dataclasses.fields(cls)}
    known = set(allowed) if allowed is not None else (set(hints) if cls is not None else None)
    raw: dict[str, str] = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptionError(f"{option} expects KEY=VALUE, got {item!r}")
        if not key.isprintable():
            raise OptionError(f"{option}: option name {key!r} holds unprintable characters")
        if key in raw:
            raise OptionError(f"{option} {key} given twice ({key}={raw[key]!r} and {key}={value!r})")
        raw[key] = value
    if known is not None:
        bad = sorted(set(raw) - known)
        if bad:
            raise OptionError(f"{option}: unknown {what}(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
    parsed = {k: parse_value(v, hints.get(k, Any), f"{option} {k}={v if v.isprintable() else repr(v)}")
              for k, v in raw.items()}
    for k, value in parsed.items():
        check_set_range(k, value, f"{option} {k}={raw[k] if raw[k].isprintable() else repr(raw[k])}")
    check_fits_memory(parsed, option)
    return parsed


def check_set_range(key: str, value: Any, where: str) -> None:
    """Refuse a ``--set`` value outside the documented range of ``key`` (:data:`SET_RANGES`).

    Lists (``adam_betas``) are checked element by element; None (a default) passes.
    """
    bounds = SET_RANGES.get(key)
    if bounds is None or value is None or isinstance(value, (bool, str)):
        return
    lo, hi = bounds
    for v in value if isinstance(value, (list, tuple)) else (value,):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise OptionError(f"{where}: out of range; {key} must be between {lo:g} and {hi:g}")


def _available_bytes() -> int | None:
    """Memory this machine can still give (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits_memory(options: Mapping[str, Any], option: str = "--set", *, available: int | None = None) -> None:
    """Refuse an ``image_size`` / width combination whose feature maps alone exceed the memory left.

    The estimate is a lower bound: four float32 feature maps of the widest layer at full
    resolution for one image (``4 * image_size**2 * width * 4`` bytes; a real network keeps many
    more during training). Only checked when ``image_size`` or a width is given.

    Raises:
        OptionError: one line naming the values, the estimate and the memory available.
    """
    given = [k for k in ("image_size", *_WIDTHS) if isinstance(options.get(k), int)]
    if not given:
        return
    size = int(options.get("image_size") or 256)
    width = max([int(options[k]) for k in _WIDTHS if isinstance(options.get(k), int)] or [64])
    need = 4 * size * size * width * 4
    avail = _available_bytes() if available is None else available
    if avail is not None and need > avail:
        values = " ".join(f"{k}={options[k]}" for k in given)
        raise OptionError(f"{option} {values}: one image's feature maps alone need about {need / 2**30:.1f} GiB, "
                          f"more than the {avail / 2**30:.1f} GiB of memory available; use a smaller image_size or width")


def check_seed(option: str, value: int | None) -> int | None:
    """Refuse a seed outside 0..2**32 - 1 (one line naming the option); returns the seed."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise OptionError(f"{option} must be a whole number between 0 and 2**32 - 1 ({SEED_MAX}), got {value}")
    return value


def check_finite(option: str, value: float | None) -> None:
    """Refuse NaN and inf for a float option (typer's float parser accepts them)."""
    if value is not None and not math.isfinite(float(value)):
        raise OptionError(f"{option} must be a finite number, got {value}")


def check_positive(option: str, value: float | None, *, allow_zero: bool = False) -> None:
    """Refuse a value below 1 (or below 0 with ``allow_zero``); NaN and inf included."""
    if value is None:
        return
    check_finite(option, value)
    if value < 0 or (value == 0 and not allow_zero):
        raise OptionError(f"{option} must be {'>= 0' if allow_zero else 'positive'}, got {value}")


_DEVICE_RE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def check_device(option: str, device: str | None) -> None:
    """``--device``: None (auto), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; CUDA must be present.

    Raises:
        OptionError: another name (``tpu``), or CUDA / device N not available here.
    """
    if device is None:
        return
    text = device.strip().lower()
    if not _DEVICE_RE.match(text):
        raise OptionError(f"{option} {device!r}: expected cpu, cuda, cuda:N or mps")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise OptionError(f"{option} {device!r}: CUDA is not available on this machine (use cpu)")
        if ":" in text and int(text.split(":")[1]) >= torch.cuda.device_count():
            raise OptionError(f"{option} {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if text == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise OptionError(f"{option} {device!r}: MPS is not available on this machine (use cpu)")
