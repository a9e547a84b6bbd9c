"""The one registry of metric specs: every metric gbench reports, its direction, label and code.

Each :class:`MetricSpec` says what a metric is (``name``, ``kind``), which way is better
(``higher_is_better``), how tables show it (``label``), and where its code lives: the function
that computes it, the record of its protocol (``conventions``) and the torchmetrics class it is
computed through, if any. Records, statistics, tables, claims, regression checks and figures
read directions and labels from here (:func:`higher_is_better`, :func:`direction`,
:func:`metric_label`, :func:`sort_metrics`); pipelines read the metric names of a kind
(:func:`metric_names`) and the conventions to record (:meth:`MetricSpec.protocol`).

Layering: ``gbench.core`` sits below ``gbench.metrics`` and may not import it (the import-linter
contract in ``pyproject.toml``). So the table below is *data*: the code of a metric is named by a
``"module:attribute"`` string, resolved with :mod:`importlib` only when a caller asks for it
(:meth:`MetricSpec.function`, :meth:`MetricSpec.protocol`, :meth:`MetricSpec.metric_class`).
``gbench.core`` itself never resolves them: records and statistics need only directions and
labels, which are plain fields, so importing this module imports no torch and no metric code.

Argument order: every metric function takes the evaluated side first and the reference second,
``fn(pred, ref)``: ``(fake, real)`` images for quality metrics, ``(pred, true)`` instance maps,
``(fake, real)`` feature sets or stacks (torchmetrics' ``(preds, target)`` and piq's ``(x, y)``).

Kinds
    ``quality``       paired full-reference image metrics: ``fn(fake, real)`` on image batches
                      ``(N, 3, H, W)``, one value per pair (:mod:`gbench.metrics.quality`).
    ``instance``      nuclei instance metrics: ``fn(pred, true)`` on 2-D instance maps, one value
                      per image (:mod:`gbench.metrics.instance`).
    ``distribution``  unpaired set metrics: ``fn(fake, real)`` on feature sets ``(N, D)``, one
                      value per set (:mod:`gbench.metrics.distribution`).
    ``multifocus``    multi-focus stack metrics: ``fn(fake, real)`` on stacks ``(N, P, H, W, 3)``
                      uint8, one value per set (:mod:`gbench.metrics.focus`).

Adding a metric is one file plus one line: write the function in ``gbench/metrics/<family>.py``
(a new module for a new family) and add its ``MetricSpec(...)`` line to :data:`METRICS` below; the
test ``tests/core/test_metric_specs.py`` then runs it through its kind's smoke path and checks its
direction on a better/worse pair.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["MetricSpec", "METRICS", "METRIC_KINDS", "metric_spec", "metric_names", "is_registered",
           "higher_is_better", "direction", "metric_label", "sort_metrics", "resolve"]

MetricKind = Literal["quality", "instance", "distribution", "multifocus"]
#: The kinds of metric, as in the module docstring.
METRIC_KINDS: Final[tuple[str, ...]] = ("quality", "instance", "distribution", "multifocus")

_REF = re.compile(r"^(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_]\w*)(?:\[(?P<key>[\w-]+)\])?$")


def resolve(ref: str) -> Any:
    """The object a ``"module:attribute"`` (or ``"module:MAPPING[key]"``) string names.

    Raises:
        ValueError: a malformed reference.
        ImportError, AttributeError, KeyError: the module, attribute or key does not exist.
    """
    m = _REF.match(ref)
    if m is None:
        raise ValueError(f"metric reference {ref!r} is not 'module:attribute' or 'module:MAPPING[key]'")
    obj = getattr(importlib.import_module(m["module"]), m["attr"])
    return obj[m["key"]] if m["key"] else obj


@dataclass(frozen=True)
class MetricSpec:
    """One metric.

    Attributes:
        name: record key, lowercase (``ssim``, ``aji_plus`` ...).
        kind: ``quality``, ``instance``, ``distribution`` or ``multifocus``.
        higher_is_better: whether a larger value is better.
        label: display name, as in the papers (``SSIM``, ``AJI+``).
        fn: ``"module:function"`` computing it, ``fn(pred, ref, **options)``.
        output: index into ``fn``'s tuple result when ``fn`` computes several metrics at once
            (``dq_sq_pq`` -> ``dq`` is 0); ``None`` when it returns this metric alone.
        conventions: ``"module:NAME"`` or ``"module:NAME[key]"``: the protocol record to store
            with every value (``""``: none).
        torchmetrics: ``"module:Class"`` of the torchmetrics class the value is computed through
            (``""``: gbench's own code).
        paper: reported in the papers' tables (the default metric set of tables and claims).
    """

    name: str
    kind: MetricKind
    higher_is_better: bool
    label: str
    fn: str
    output: int | None = None
    conventions: str = ""
    torchmetrics: str = ""
    paper: bool = True

    @property
    def direction(self) -> str:
        """``"higher"`` or ``"lower"``: the better direction."""
        return "higher" if self.higher_is_better else "lower"

    def function(self) -> Callable[..., Any]:
        """The function computing this metric (its module is imported now)."""
        fn = resolve(self.fn)
        if self.output is None:
            return fn
        index = self.output

        def pick(pred: Any, ref: Any, **options: Any) -> Any:
            return fn(pred, ref, **options)[index]

        pick.__name__ = self.name
        pick.__doc__ = f"``{self.fn}(pred, ref, **options)[{index}]``: {self.label}."
        return pick

    def compute(self, pred: Any, ref: Any, **options: Any) -> Any:
        """``function()(pred, ref, **options)``: the value(s) of this metric."""
        return self.function()(pred, ref, **options)

    def protocol(self) -> Any:
        """The conventions to record with a value of this metric (``{}`` when none)."""
        return resolve(self.conventions) if self.conventions else {}

    def metric_class(self) -> type | None:
        """The torchmetrics class the value is computed through, or ``None``."""
        return resolve(self.torchmetrics) if self.torchmetrics else None


_Q, _I, _D = "gbench.metrics.quality", "gbench.metrics.instance", "gbench.metrics.distribution"

#: Every metric, in table order (the papers' order; unknown metrics follow alphabetically).
METRICS: Final[tuple[MetricSpec, ...]] = (
    MetricSpec("ssim", "quality", True, "SSIM", f"{_Q}:ssim", conventions=f"{_Q}:CONVENTIONS[ssim]"),
    MetricSpec("fsim", "quality", True, "FSIM", f"{_Q}:fsim", conventions=f"{_Q}:CONVENTIONS[fsim]"),
    MetricSpec("gmsd", "quality", False, "GMSD", f"{_Q}:gmsd", conventions=f"{_Q}:CONVENTIONS[gmsd]"),
    MetricSpec("nrmse", "quality", False, "NRMSE", f"{_Q}:nrmse", conventions=f"{_Q}:CONVENTIONS[nrmse]"),
    MetricSpec("dq", "instance", True, "DQ", f"{_I}:dq_sq_pq", 0, f"{_I}:CONVENTIONS"),
    MetricSpec("sq", "instance", True, "SQ", f"{_I}:dq_sq_pq", 1, f"{_I}:CONVENTIONS"),
    MetricSpec("pq", "instance", True, "PQ", f"{_I}:dq_sq_pq", 2, f"{_I}:CONVENTIONS"),
    MetricSpec("aji", "instance", True, "AJI", f"{_I}:aji", conventions=f"{_I}:CONVENTIONS"),
    MetricSpec("aji_plus", "instance", True, "AJI+", f"{_I}:aji_plus", conventions=f"{_I}:CONVENTIONS", paper=False),
    MetricSpec("fid", "distribution", False, "FID", f"{_D}:fid", conventions=f"{_D}:CONVENTIONS[fid]",
               torchmetrics="torchmetrics.image.fid:FrechetInceptionDistance", paper=False),
    MetricSpec("kid", "distribution", False, "KID", f"{_D}:kid", 0, f"{_D}:CONVENTIONS[kid]",
               torchmetrics="torchmetrics.image.kid:KernelInceptionDistance", paper=False),
    MetricSpec("precision", "distribution", True, "Precision", f"{_D}:precision_recall", 0,
               f"{_D}:CONVENTIONS[precision]", paper=False),
    MetricSpec("recall", "distribution", True, "Recall", f"{_D}:precision_recall", 1, f"{_D}:CONVENTIONS[recall]",
               paper=False),
    MetricSpec("density", "distribution", True, "Density", f"{_D}:density_coverage", 0,
               f"{_D}:CONVENTIONS[density]", paper=False),
    MetricSpec("coverage", "distribution", True, "Coverage", f"{_D}:density_coverage", 1,
               f"{_D}:CONVENTIONS[coverage]", paper=False),
    MetricSpec("focus_curve_l1", "multifocus", False, "Focus-curve L1", "gbench.metrics.focus:focus_curve_l1",
               conventions="gbench.metrics.focus:CONVENTIONS[focus_curve_l1]", paper=False),
)

_BY_NAME: Final[dict[str, MetricSpec]] = {s.name: s for s in METRICS}
if len(_BY_NAME) != len(METRICS):
    raise RuntimeError("gbench.core.metric_specs.METRICS holds a name twice")


def metric_spec(name: str) -> MetricSpec:
    """The spec of ``name``.

    Raises:
        KeyError: an unregistered metric (the registered ones are listed).
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"metric {name!r} is not registered; known: {', '.join(_BY_NAME)}") from None


def is_registered(name: str) -> bool:
    """Whether ``name`` is a registered metric."""
    return name in _BY_NAME


def metric_names(kind: str | None = None, *, paper: bool | None = None) -> tuple[str, ...]:
    """Registered metric names in table order, optionally of one ``kind`` and/or only those the
    papers report (``paper=True``) or do not (``paper=False``).

    Raises:
        ValueError: an unknown kind.
    """
    if kind is not None and kind not in METRIC_KINDS:
        raise ValueError(f"unknown metric kind {kind!r}; choose from {', '.join(METRIC_KINDS)}")
    return tuple(s.name for s in METRICS if (kind is None or s.kind == kind) and (paper is None or s.paper == paper))


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better.

    Raises:
        KeyError: ``metric`` has no known direction (the known metrics are listed).
    """
    if metric not in _BY_NAME:
        raise KeyError(f"metric {metric!r} has no known better direction; known: {', '.join(_BY_NAME)}")
    return _BY_NAME[metric].higher_is_better


def direction(metric: str, default: str | None = None) -> str | None:
    """``"higher"`` or ``"lower"`` for a registered metric, ``default`` otherwise."""
    spec = _BY_NAME.get(metric)
    return spec.direction if spec is not None else default


def metric_label(metric: str) -> str:
    """The display name of a metric (``aji_plus`` -> ``AJI+``; unregistered names upper-cased)."""
    spec = _BY_NAME.get(metric)
    return spec.label if spec is not None else metric.upper()


def sort_metrics(metrics: Iterable[str]) -> list[str]:
    """Metrics in table order: the registry's order first, then unregistered metrics alphabetically."""
    ms = list(dict.fromkeys(metrics))
    return [s.name for s in METRICS if s.name in ms] + sorted(m for m in ms if m not in _BY_NAME)
