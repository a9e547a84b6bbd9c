"""Training-set specifications: ``R``, ``S3k``, ``R+S3k``, ``S10k``, ``R+S10k`` and any ``+``-join.

Grammar: a spec is one or more parts joined by ``+``. A part is

* ``R``: the real training split of ``--data``;
* ``NAME`` or ``NAME<count>``: a synthetic set; ``<count>`` is an integer with an optional ``k``
  (x1000) suffix and picks that many images (``S3k`` = 3,000 images of the set ``S``); without
  a count every image of the set is used. Trailing digits always read as the count.

Scaling: profiles smaller than ``paper`` scale the counts down and say so. A part whose whole
token is one of the profile's named sets (``S3k``, ``S10k``) takes the profile's count
(``demo``: 96 and 320); another count is scaled by the same factor as ``S3k`` (count x
profile S3k / 3000, at least 1). The label then reads ``S3k (scaled to 96)``; under ``paper``
it reads ``S3k``.

Where the images come from (``synthetic_dir``, default ``runs/synth``, the folder
``gbench synthesize`` writes to): the first of ``<dir>/<token>`` (``runs/synth/S3k``),
``<dir>/<name>`` (``runs/synth/S``) and ``<dir>`` itself that is a ``folder`` layout set
(``images/``, ``labels/``, optional ``manifest.csv``). A count takes the *first* images in
sorted name order, so ``S3k`` is a subset of ``S10k`` when both read the same folder; asking
for more images than the folder holds is an error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gbench.core.errors import DataError
from gbench.core.profiles import PAPER, Profile
from gbench.data.loaders import load_folder
from gbench.data.types import Dataset

__all__ = ["SetPart", "TrainSetSpec", "parse_train_spec", "scaled_count", "ResolvedPart", "resolve_part",
           "DEFAULT_SYNTHETIC_DIR", "PAPER_SETS"]

#: Where ``gbench synthesize`` writes its sets by default.
DEFAULT_SYNTHETIC_DIR = Path("runs/synth")
#: The paper's training sets (Table 2 rows), in table order.
PAPER_SETS: tuple[str, ...] = ("R", "S3k", "R+S3k", "S10k", "R+S10k")

_PART = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_\-]*?)(?P<count>\d+[kK]?)?$")


@dataclass(frozen=True)
class SetPart:
    """One ``+``-separated part of a training-set spec.

    Attributes:
        token: the part as written (``R``, ``S3k``).
        kind: ``real`` or ``synthetic``.
        name: the set's name without the count (``S``; ``R`` for the real set).
        count: images asked for at paper scale (3000 for ``S3k``), None for all.
    """

    token: str
    kind: Literal["real", "synthetic"]
    name: str
    count: int | None = None


@dataclass(frozen=True)
class TrainSetSpec:
    """A parsed training-set spec (``R+S3k`` -> parts ``R`` and ``S3k``)."""

    text: str
    parts: tuple[SetPart, ...]

    @property
    def has_real(self) -> bool:
        return any(p.kind == "real" for p in self.parts)

    @property
    def synthetic(self) -> tuple[SetPart, ...]:
        return tuple(p for p in self.parts if p.kind == "synthetic")

    def label(self, profile: Profile) -> str:
        """The spec with every scaled count spelled out: ``R+S3k (scaled to 96)``."""
        notes = []
        for p in self.synthetic:
            if p.count is not None:
                n = scaled_count(p, profile)
                if n != p.count:
                    notes.append(f"{p.token} scaled to {n}" if len(self.parts) > 1 or len(self.synthetic) > 1
                                 else f"scaled to {n}")
        return self.text + (f" ({'; '.join(notes)})" if notes else "")

    def slug(self) -> str:
        """File-system friendly form (``R+S3k`` -> ``R+S3k``; only ``+``, letters, digits, ``-_``)."""
        return self.text


def _parse_count(text: str) -> int:
    return int(text[:-1]) * 1000 if text[-1] in "kK" else int(text)


def parse_train_spec(text: str) -> TrainSetSpec:
    """Parse ``R``, ``S3k``, ``R+S10k``, ``R+S3k+GAN500`` ... into a :class:`TrainSetSpec`.

    Raises:
        ValueError: an empty part, a malformed part, a zero count or a repeated part.
    """
    raw = str(text).strip()
    if not raw:
        raise ValueError("empty training-set spec (examples: R, S3k, R+S3k, S10k, R+S10k)")
    parts: list[SetPart] = []
    for tok in raw.split("+"):
        tok = tok.strip()
        if not tok:
            raise ValueError(f"training-set spec {raw!r} has an empty part (examples: R, R+S3k)")
        if tok == "R":
            parts.append(SetPart("R", "real", "R"))
            continue
        m = _PART.match(tok)
        if m is None:
            raise ValueError(f"training-set part {tok!r} in {raw!r} is not R or NAME[COUNT] (e.g. S3k, S10k, S500)")
        count = _parse_count(m["count"]) if m["count"] else None
        if count == 0:
            raise ValueError(f"training-set part {tok!r} asks for 0 images")
        parts.append(SetPart(tok, "synthetic", m["name"], count))
    tokens = [p.token for p in parts]
    dup = sorted({t for t in tokens if tokens.count(t) > 1})
    if dup:
        raise ValueError(f"training-set spec {raw!r} repeats {', '.join(dup)}")
    return TrainSetSpec("+".join(tokens), tuple(parts))


def scaled_count(part: SetPart, profile: Profile) -> int | None:
    """Images a synthetic part uses under ``profile`` (None: all images of the set)."""
    if part.count is None:
        return None
    counts = dict(profile.synthesis.counts)
    if part.token in counts:
        return int(counts[part.token])
    ref = dict(PAPER.synthesis.counts)["S3k"]
    factor = counts.get("S3k", ref) / ref
    return max(1, round(part.count * factor))


@dataclass(frozen=True)
class ResolvedPart:
    """A part with its images: ``dataset`` and the indices of the images used."""

    part: SetPart
    dataset: Dataset
    indices: tuple[int, ...]
    source: str

    @property
    def size(self) -> int:
        return len(self.indices)


def _is_folder_set(path: Path) -> bool:
    return (path / "images").is_dir() and (path / "labels").is_dir()


def resolve_part(part: SetPart, profile: Profile, synthetic_dir: str | Path | None = None) -> ResolvedPart:
    """Find a synthetic part's folder and pick its images (see the module docstring).

    Raises:
        DataError: no folder found (the paths tried are named), or too few images.
    """
    if part.kind != "synthetic":
        raise ValueError(f"resolve_part takes synthetic parts, got {part.token!r}")

    base = Path(synthetic_dir) if synthetic_dir is not None else DEFAULT_SYNTHETIC_DIR
    tried = [base / part.token, base / part.name, base]
    folder = next((p for p in tried if _is_folder_set(p)), None)
    if folder is None:
        raise DataError(base, f"no synthetic set for {part.token!r}: none of "
                        f"{', '.join(str(p) for p in dict.fromkeys(tried))} holds images/ and labels/ "
                        f"(write one with `gbench synthesize`, or pass --synthetic DIR)")
    ds = load_folder(folder, split="all", name=str(folder))
    want = scaled_count(part, profile)
    if want is None:
        want = len(ds)
    if want > len(ds):
        raise DataError(folder, f"holds {len(ds)} images; {part.token} needs {want} under profile {profile.name!r}")
    return ResolvedPart(part, ds, tuple(range(want)), str(folder))
