"""A sample sheet of a trained ``ddpm`` run beside the real test crops, through gbench's CLI only.

    python examples/gbench-diffusion/scripts/sample_sheet.py RUN/checkpoints/last.pt OUT.png \
        [--data synthetic-he] [--profile demo] [--crops 6]

It exports the test crops Table 1 scores (``gbench maps export``), draws one image per crop's
instance map with the checkpoint's own DDIM step count (``gbench synthesize ddpm --masks``), and
writes one PNG: rows are the distance maps, the real crops and the samples.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

PLUGIN = Path(__file__).resolve().parents[1] / "src" / "gbench_diffusion" / "plugin.py"


def gbench(*args: str) -> None:
    cmd = [sys.executable, "-m", "gbench", "--plugin", str(PLUGIN), *args]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", default="synthetic-he")
    ap.add_argument("--profile", default="demo", help="profile whose test crops are exported (its crop size "
                    "should be the size the model was trained at: smoke gives 64 px crops)")
    ap.add_argument("--crops", type=int, default=6)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        maps = Path(tmp) / "maps"
        gbench("maps", "export", "--data", args.data, "--profile", args.profile, "--out", str(maps))
        names = sorted(p.stem for p in (maps / "images").glob("*.png"))[: args.crops]
        masks = Path(tmp) / "masks"
        masks.mkdir()
        for n in names:
            os.link(maps / "labels" / f"{n}.png", masks / f"{n}.png")
        rows = [[np.repeat((np.clip(np.load(maps / "distance" / f"{n}.npy"), 0, 1) * 255).astype(np.uint8)[..., None],
                           3, axis=2) for n in names],
                [np.asarray(Image.open(maps / "images" / f"{n}.png").convert("RGB")) for n in names]]
        out = Path(tmp) / "drawn"
        gbench("synthesize", "ddpm", "--checkpoint", str(args.checkpoint), "--masks", str(masks),
               "--profile", args.profile, "--out", str(out))
        drawn = sorted((out / "images").glob("*.png"))
        rows.append([np.asarray(Image.open(p).convert("RGB")) for p in drawn[: len(names)]])
    sheet = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(args.out)
    print(f"wrote {args.out}: rows distance map, real crop, ddpm sample")


if __name__ == "__main__":
    main()
