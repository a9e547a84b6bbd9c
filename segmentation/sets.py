"""Training-set specifications: ``R``, ``S3k``, ``R+S3k``, ``S10k``, ``R+S10k``, and the user's own named sets.

Grammar: a spec is one or more parts joined by ``+``. A part is

* ``R``: the real training split of ``--data`` (always all of it; ``R:100`` is refused);
* ``S3k`` or ``S10k``: one of the paper's synthetic sets (:data:`PAPER_COUNTS`: 3,000 and
  10,000 images of the set ``S``). These are the only parts that scale with the profile;
* ``NAME``: every image of the user's set ``NAME``, given as ``--synthetic NAME=DIR``;
* ``NAME:COUNT``: the first ``COUNT`` images of that set (an integer, optional ``k`` = x1000:
  ``mine:3000``, ``mine:3k``). An explicit count never scales.

A name is never parsed: ``mysynth2`` is the set called ``mysynth2``, not 2 images of
``mysynth``. Names take letters, digits, ``_`` and ``-`` and start with a letter; ``R``, ``S3k``
and ``S10k`` (in any case) are reserved, so a spec never has two readings.

Scaling: profiles smaller than ``paper`` hold smaller ``S3k``/``S10k`` counts
(``profile.synthesis.counts``: ``demo`` 96 and 320, ``smoke`` 6 and 12) and the label says so:
``S3k (scaled to 96)``; under ``paper`` it reads ``S3k``.

Where the images come from (:class:`SyntheticSources`): a named part reads its own folder; a
paper part reads the first of ``<dir>/<token>`` (``runs/synth/S3k``), ``<dir>/S`` and ``<dir>``
itself that is a ``folder`` layout set (``images/``, ``labels/``, optional ``manifest.csv``),
where ``<dir>`` is the plain ``--synthetic DIR`` folder (default ``runs/synth``, where
``gbench synthesize`` writes). A count takes the *first* images in sorted name order, so
``S3k`` is a subset of ``S10k`` when both read the same folder; a set holding fewer images than
the count asked for is an error naming the set and both numbers.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gbench.core.errors import DataError
from gbench.core.profiles import PAPER, Profile
from gbench.data.loaders import load_folder
from gbench.data.types import Dataset

__all__ = ["SetPart", "TrainSetSpec", "parse_train_spec", "scaled_count", "ResolvedPart", "resolve_part",
           "SyntheticSources", "parse_synthetic_options", "check_set_name", "check_set_complete",
           "DEFAULT_SYNTHETIC_DIR", "PAPER_SETS", "PAPER_COUNTS"]

#: Where ``gbench synthesize`` writes its sets by default.
DEFAULT_SYNTHETIC_DIR = Path("runs/synth")
#: The paper's training sets (Table 2 rows), in table order.
PAPER_SETS: tuple[str, ...] = ("R", "S3k", "R+S3k", "S10k", "R+S10k")
#: The paper's synthetic sets and their sizes at paper scale (profiles scale them down).
PAPER_COUNTS: dict[str, int] = {"S3k": 3000, "S10k": 10000}
#: Names a user's set cannot take (compared case-insensitively).
RESERVED = ("R", *PAPER_COUNTS)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
_COUNT = re.compile(r"^\d+[kK]?$")


@dataclass(frozen=True)
class SetPart:
    """One ``+``-separated part of a training-set spec.

    Attributes:
        token: the part as written (``R``, ``S3k``, ``mine:500``).
        kind: ``real`` or ``synthetic``.
        name: the set's name (``S`` for the paper's sets; ``R`` for the real set; ``mine``).
        count: images asked for (3000 for ``S3k``, 500 for ``mine:500``), None for all.
        paper: a paper set (``S3k``, ``S10k``), the only kind whose count scales with the profile.
    """

    token: str
    kind: Literal["real", "synthetic"]
    name: str
    count: int | None = None
    paper: bool = False


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

    @property
    def named(self) -> tuple[SetPart, ...]:
        """The parts that read a user's named set."""
        return tuple(p for p in self.synthetic if not p.paper)

    def label(self, profile: Profile) -> str:
        """The spec with every scaled count spelled out: ``R+S3k (S3k scaled to 96)``, ``S3k (scaled to 40)``."""
        notes = []
        for p in self.synthetic:
            n = scaled_count(p, profile)
            if p.count is not None and n != p.count:
                notes.append(f"{p.token} scaled to {n}" if len(self.parts) > 1 else f"scaled to {n}")
        return self.text + (f" ({'; '.join(notes)})" if notes else "")

    def slug(self) -> str:
        """File-system friendly form: ``R+S3k`` stays, ``R+mine:500`` -> ``R+mine@500`` (``@`` is in no name)."""
        return self.text.replace(":", "@")


def _parse_count(text: str) -> int:
    return int(text[:-1]) * 1000 if text[-1] in "kK" else int(text)


def check_set_name(name: str) -> str:
    """``name`` if it can name a user's synthetic set; else ValueError saying why (reserved, bad characters)."""
    if name.upper() in {r.upper() for r in RESERVED}:
        raise ValueError(f"synthetic set name {name!r} is ambiguous: R, S3k and S10k are the real set and the "
                         "paper's sets; choose another name")
    if not _NAME.match(name):
        raise ValueError(f"synthetic set name {name!r}: use letters, digits, '_' and '-', starting with a letter")
    return name


def parse_train_spec(text: str, named: Collection[str] | None = None) -> TrainSetSpec:
    """Parse ``R``, ``S3k``, ``R+S10k``, ``R+mine``, ``mine:500+S3k`` ... into a :class:`TrainSetSpec`.

    Args:
        text: the spec.
        named: the user's set names (``--synthetic NAME=DIR``); given, a part naming another set is
            refused here, else when its folder is looked up (:func:`resolve_part`).

    Raises:
        ValueError: an empty or malformed part, a count on ``R`` or on a paper set, a zero count,
            a repeated set, an unknown name (with ``named``).

    Example:
        >>> [(p.name, p.count) for p in parse_train_spec("R+mysynth2+S3k").parts]
        [('R', None), ('mysynth2', None), ('S', 3000)]
    """
    raw = str(text).strip()
    if not raw:
        raise ValueError("empty training-set spec (examples: R, S3k, R+S3k, R+mine, mine:500)")
    parts: list[SetPart] = []
    for tok in raw.split("+"):
        tok = tok.strip()
        if not tok:
            raise ValueError(f"training-set spec {raw!r} has an empty part (examples: R, R+S3k, R+mine)")
        name, sep, count_text = tok.partition(":")
        if name == "R":
            if sep:
                raise ValueError(f"training-set part {tok!r} in {raw!r}: R is the whole train split of --data; "
                                 "it takes no count")
            parts.append(SetPart("R", "real", "R"))
            continue
        if name in PAPER_COUNTS:
            if sep:
                raise ValueError(f"training-set part {tok!r} in {raw!r}: {name} is a paper set with its own "
                                 f"count; for N images of your own set name it (--synthetic mine=DIR, "
                                 "--train mine:N)")
            parts.append(SetPart(tok, "synthetic", "S", PAPER_COUNTS[name], paper=True))
            continue
        if not _NAME.match(name) or (sep and not _COUNT.match(count_text)):
            raise ValueError(f"training-set part {tok!r} in {raw!r} is not R, S3k, S10k, NAME or NAME:COUNT "
                             "(e.g. mine, mine:500, mine:3k)")
        if name.upper() in {r.upper() for r in RESERVED}:
            raise ValueError(f"training-set part {tok!r} in {raw!r} is ambiguous: did you mean "
                             f"{next(r for r in RESERVED if r.upper() == name.upper())}?")
        if named is not None and name not in named:
            raise ValueError(_unknown(name, raw, named))
        count = _parse_count(count_text) if sep else None
        if count == 0:
            raise ValueError(f"training-set part {tok!r} asks for 0 images")
        parts.append(SetPart(tok, "synthetic", name, count))
    tokens = [p.token for p in parts]
    sets = [p.name for p in parts if not p.paper]
    dup = sorted({t for t in tokens if tokens.count(t) > 1} | {n for n in sets if sets.count(n) > 1})
    if dup:
        raise ValueError(f"training-set spec {raw!r} repeats {', '.join(dup)}")
    return TrainSetSpec("+".join(tokens), tuple(parts))


def _unknown(name: str, raw: str, named: Iterable[str]) -> str:
    known = sorted(named)
    hint = difflib.get_close_matches(name, [*known, *PAPER_COUNTS], n=1)
    return (f"unknown training set {name!r} in {raw!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f": name your set with --synthetic {name}=DIR; named sets: {', '.join(known) or 'none'}; "
            "paper sets: S3k, S10k")


def scaled_count(part: SetPart, profile: Profile) -> int | None:
    """Images a synthetic part uses under ``profile`` (None: all images of the set).

    A paper part (``S3k``, ``S10k``) takes the profile's count for it; a named part its own
    explicit count, unscaled."""
    if part.count is None:
        return None
    if not part.paper:
        return part.count
    counts = dict(profile.synthesis.counts)
    if part.token in counts:
        return int(counts[part.token])
    ref = dict(PAPER.synthesis.counts)["S3k"]
    return max(1, round(part.count * counts.get("S3k", ref) / ref))


@dataclass(frozen=True)
class SyntheticSources:
    """Where synthetic parts find their images.

    Attributes:
        folder: where the paper's sets are read (``--synthetic DIR``; None: ``runs/synth``).
        named: the user's sets as (name, folder) pairs (``--synthetic NAME=DIR``).
    """

    folder: Path | None = None
    named: tuple[tuple[str, Path], ...] = ()

    def __post_init__(self) -> None:
        names = [n for n, _ in self.named]
        for n in names:
            check_set_name(n)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"--synthetic names {', '.join(dup)} more than once")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.named)

    def to_dict(self) -> dict[str, object]:
        return {"folder": None if self.folder is None else str(self.folder),
                "named": {n: str(p) for n, p in self.named}}

    @classmethod
    def of(cls, value: SyntheticSources | str | Path | Mapping[str, str | Path] | None) -> SyntheticSources:
        """``value`` itself, a folder of paper sets, or a mapping of named sets."""
        if isinstance(value, SyntheticSources):
            return value
        if value is None:
            return cls()
        if isinstance(value, Mapping):
            return cls(named=tuple((str(k), Path(v)) for k, v in value.items()))
        return cls(folder=Path(value))


def parse_synthetic_options(values: Iterable[str] | None) -> SyntheticSources:
    """``--synthetic`` values: ``NAME=DIR`` (repeatable) names a set, a plain ``DIR`` (at most one)
    is where the paper's S3k/S10k are read.

    Raises:
        ValueError: a bad or reserved name, a name given twice, two plain folders.
    """
    folder: Path | None = None
    named: list[tuple[str, Path]] = []
    for v in values or []:
        name, sep, path = str(v).partition("=")
        if not sep:
            if folder is not None:
                raise ValueError(f"--synthetic: two folders for the paper's sets ({folder}, {v}); name your "
                                 "own sets instead: --synthetic NAME=DIR")
            folder = Path(v)
            continue
        if not path.strip():
            raise ValueError(f"--synthetic {v!r}: no folder after '='")
        named.append((check_set_name(name.strip()), Path(path.strip())))
    return SyntheticSources(folder, tuple(named))


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


def check_set_complete(folder: Path) -> None:
    """Refuse a synthetic set that is not complete (one line naming the folder).

    A set written by ``gbench synthesize`` is complete when its ``run.json`` says ``complete`` (not
    ``running``: interrupted, or still being written) and its ``manifest.csv`` lists exactly the
    images and labels on disk (none missing, none extra). A folder without ``run.json`` /
    ``manifest.csv`` (the user's own set) is not checked. A set whose source training run was
    recorded as failed, or whose generator failed the output check, is named in a warning.

    Raises:
        DataError: unreadable ``run.json`` / ``manifest.csv``, status ``running``, or a manifest that
            disagrees with the files.
    """
    import csv
    import io
    import json
    import logging

    folder = Path(folder)
    run = folder / "run.json"
    if run.is_file():
        try:
            doc = json.loads(run.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(run, f"unreadable run.json of a synthetic set ({type(exc).__name__}); "
                            "rerun gbench synthesize --resume") from None
        status = doc.get("status") if isinstance(doc, dict) else None
        if status == "running":
            raise DataError(folder, "synthetic set is incomplete: its run.json says 'running' (gbench synthesize "
                            "was interrupted or is still writing); finish it with gbench synthesize --resume")
        for key, what in (("source_run_failure", "its generator's training run is recorded as failed"),
                          ("output_check", "its generator failed the output check")):
            if isinstance(doc, dict) and doc.get(key):
                logging.getLogger(__name__).warning("%s: synthetic set used although %s (%s)", folder, what, doc[key])
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        return
    try:
        reader = csv.DictReader(io.StringIO(manifest.read_text(encoding="utf-8"), newline=""))
        rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(manifest, f"unreadable manifest ({type(exc).__name__}); rerun gbench synthesize --resume") from None
    if not reader.fieldnames:
        raise DataError(manifest, "empty manifest (no header line); rerun gbench synthesize --resume")
    cols = set(rows[0]) if rows else set()
    if rows and "image_path" not in cols:
        return  # another tool's manifest: nothing to compare
    listed: set[str] = set()
    for line, row in enumerate(rows, start=2):
        for key in ("image_path", "label_path", "mask_path"):
            rel = row.get(key)
            if key in cols and not rel:
                raise DataError(manifest, f"line {line}: empty {key}")
            if rel:
                listed.add(Path(rel).as_posix())
                if not (folder / rel).is_file():
                    raise DataError(folder, f"synthetic set is incomplete: manifest.csv line {line} lists {rel}, "
                                    "which is missing; rerun gbench synthesize --resume")
    on_disk = {f"{sub}/{q.name}" for sub in ("images", "labels") if (folder / sub).is_dir()
               for q in (folder / sub).iterdir() if q.is_file() and not q.name.startswith(".")}
    extra = sorted(on_disk - listed)
    if extra:
        raise DataError(folder, f"synthetic set disagrees with its manifest.csv: {len(extra)} file(s) not listed "
                        f"(first: {extra[0]}); remove them or rerun gbench synthesize with the set's --count")


def resolve_part(part: SetPart, profile: Profile,
                 synthetic_dir: SyntheticSources | str | Path | Mapping[str, str | Path] | None = None
                 ) -> ResolvedPart:
    """Find a synthetic part's folder and pick its images (see the module docstring).

    Args:
        part: a synthetic part.
        profile: scales the paper's sets.
        synthetic_dir: a :class:`SyntheticSources`, or a folder of paper sets, or {name: folder}.

    Raises:
        DataError: no folder found (the paths tried are named), an unknown name, or a set
            smaller than the count asked for (the set and both numbers named).
    """
    if part.kind != "synthetic":
        raise ValueError(f"resolve_part takes synthetic parts, got {part.token!r}")
    src = SyntheticSources.of(synthetic_dir)
    if part.paper:
        base = src.folder if src.folder is not None else DEFAULT_SYNTHETIC_DIR
        tried = [base / part.token, base / part.name, base]
        folder = next((p for p in tried if _is_folder_set(p)), None)
        if folder is None:
            raise DataError(base, f"no synthetic set for {part.token!r}: none of "
                            f"{', '.join(str(p) for p in dict.fromkeys(tried))} holds images/ and labels/ "
                            f"(write one with `gbench synthesize`, or pass --synthetic DIR)")
    else:
        named = dict(src.named)
        if part.name not in named:
            raise DataError(None, _unknown(part.name, part.token, named))
        folder = named[part.name]
        if not _is_folder_set(folder):
            raise DataError(folder, f"synthetic set {part.name!r} needs images/ and labels/ folders "
                            "(the layout `gbench synthesize` writes)")
    check_set_complete(folder)
    ds = load_folder(folder, split="all", name=str(folder))
    want = scaled_count(part, profile)
    if want is None:
        want = len(ds)
    if want > len(ds):
        scale = f" under profile {profile.name!r}" if part.paper else ""
        raise DataError(folder, f"set {part.token if part.paper else part.name!r} holds {len(ds)} images; "
                        f"{part.token} asks for {want}{scale}")
    return ResolvedPart(part, ds, tuple(range(want)), str(folder))
