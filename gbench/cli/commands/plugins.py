"""``gbench list``: every registered name of a kind and where it comes from (built-in or a plugin)."""
from __future__ import annotations

from typing import Annotated

import typer

from gbench.cli.commands.common import console

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.

KINDS = ("generators", "segmenters", "extractors", "datasets", "metrics", "profiles")


def rows(kind: str) -> list[tuple[str, str, str]]:
    """``(name, source, what)`` for each registered name of ``kind`` (one of :data:`KINDS`)."""
    if kind == "generators":
        from gbench import generators

        out = []
        for name, src in generators.GENERATORS.sources().items():
            what = "frozen (pretrained; not trained by gbench)" if generators.is_frozen(name) else "trainable (train-gen)"
            out.append((name, src, what))
        out += [(n, s, "stack generator (train-mi-gan)") for n, s in generators.STACK_GENERATORS.sources().items()]
        return out
    if kind == "segmenters":
        from gbench import segmentation

        return [(n, s, segmentation.SEGMENTERS.get(n).description) for n, s in segmentation.SEGMENTERS.sources().items()]
    if kind == "extractors":
        from gbench.metrics.features import EXTRACTOR_REGISTRY

        out = [(n, s, "" if s != "built-in" else "quality --extractor") for n, s in EXTRACTOR_REGISTRY.sources().items()]
        return sorted([*out, ("timm:NAME", "built-in", "any timm backbone with --weights FILE")])
    if kind == "datasets":
        from gbench.data.loaders import COMBINED, KNOWN_REAL
        from gbench.data.resolve import DATASETS

        out = []
        for n, s in DATASETS.sources().items():
            what = KNOWN_REAL[n][1] if n in KNOWN_REAL else ("procedural H&E tiles" if s == "built-in" else "")
            out.append((n, s, what))
        out += [(n, "built-in", "union of " + " and ".join(parts)) for n, parts in COMBINED.items()]
        return sorted(out)
    if kind == "metrics":
        from gbench.core.metric_specs import METRICS

        return [(m.name, "built-in", f"{m.kind}, {m.direction} is better") for m in METRICS]
    if kind == "profiles":
        from gbench.core.profiles import PROFILES

        return [(n, "built-in", "") for n in PROFILES]
    raise ValueError(f"gbench list: unknown kind {kind!r} (choose from {', '.join(KINDS)})")


def list_names(
    kind: Annotated[str, typer.Argument(help=f"What to list: {', '.join(KINDS)}.")],
) -> None:
    """List registered generators, segmenters, extractors, datasets, metrics or profiles, and where each
    comes from (built-in, the distribution that provides it, or the plugin file)."""
    found = rows(kind)
    width = max([len(n) for n, _, _ in found] + [4])
    src_width = max([len(s) for _, s, _ in found] + [6])
    console.print(f"{'name':<{width}}  {'source':<{src_width}}  what", highlight=False, soft_wrap=True)
    for name, src, what in found:
        console.print(f"{name:<{width}}  {src:<{src_width}}  {what}".rstrip(), highlight=False, soft_wrap=True,
                      markup=False)


def register(app: typer.Typer) -> None:
    app.command("list")(list_names)
