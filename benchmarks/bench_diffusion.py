"""What the diffusion plugin (``examples/gbench-diffusion``, ``ddpm``) costs, against bare diffusers.

In one process, on one device, with one ``UNet2DModel`` (the plugin's, built from its preset):

* sampling: images/s at ``--size`` px (default 128) per DDIM step count (``--steps 5,10,25``),
  ``DDPMModule.generate`` (per-crop starting noise from each map's hash, DDIM eta 0) against a
  bare diffusers loop (``DDIMScheduler``, one ``torch.randn`` for the batch, same UNet, same
  batch of maps), and their ratio;
* training: s/step of ``DDPMModule.training_step`` (per-step noise generator, Adam, grad clip,
  EMA) against a bare diffusers step (``DDPMScheduler.add_noise``, MSE, Adam) on the same batch,
  and their ratio.

Each figure is the median of ``--repeats`` (``--train-repeats``) timed runs, plugin and bare run
alternately (sampling: after one 1-step warm-up of each loop; training: after one warm-up step
each). The load average is
printed first: the figures mean little on a busy machine. Example::

    OMP_NUM_THREADS=2 python benchmarks/bench_diffusion.py --size 128 --batch 8 --steps 5,10,25
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples" / "gbench-diffusion" / "src"))

from diffusers import DDIMScheduler, DDPMScheduler  # noqa: E402

from gbench_diffusion.ddpm import DDPMConfig, DDPMModule  # noqa: E402


def _paired_times(fa, fb, repeats: int) -> tuple[float, float]:
    """Medians of ``repeats`` timings of ``fa`` and ``fb``, run alternately (a load change on a
    shared machine then hits both sides alike)."""
    ta, tb = [], []
    for _ in range(repeats):
        for fn, out in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def _maps(n: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 1, size, size, generator=g) > 0.7).float()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", default="5,10,25", help="DDIM step counts")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train-repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"date {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}, device {dev}, "
          f"torch threads {torch.get_num_threads()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    cfg = DDPMConfig(image_size=args.size, preset=args.preset, ema_decay=0.99)
    module = DDPMModule(cfg).to(dev)
    unet = module.unet
    params = sum(p.numel() for p in unet.parameters())
    print(f"UNet2DModel {cfg.block_out_channels}, {cfg.layers_per_block} block(s)/level, {params / 1e6:.2f} M "
          f"parameters; batch {args.batch} at {args.size} px", flush=True)
    cond = _maps(args.batch, args.size).to(dev)

    print("\nsampling (images/s)            plugin      bare   plugin/bare", flush=True)
    for i, n_steps in enumerate([1] + [int(s) for s in args.steps.split(",")]):
        def plugin() -> None:
            with torch.no_grad():
                module.generate(cond, steps=n_steps)

        def bare() -> None:
            sched = DDIMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule,
                                  clip_sample=True, set_alpha_to_one=True)
            sched.set_timesteps(n_steps)
            c = cond * 2 - 1
            x = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(dev)
            with torch.no_grad():
                for t in sched.timesteps:
                    x = sched.step(unet(torch.cat([x, c], 1), t).sample, t, x, eta=0.0).prev_sample

        unet.eval()
        tp, tb = _paired_times(plugin, bare, args.repeats)
        if i == 0:  # the 1-step runs are the warm-up
            continue
        print(f"  DDIM {n_steps:3d} steps              {args.batch / tp:8.2f}  {args.batch / tb:8.2f}   {tb / tp:10.3f}",
              flush=True)

    g = torch.Generator().manual_seed(1)
    batch = {"cond": cond, "image": torch.rand(args.batch, 3, args.size, args.size, generator=g).to(dev),
             "contour": torch.zeros_like(cond)}
    unet.train()
    step = [0]

    def plugin_step() -> None:
        step[0] += 1
        module.training_step(batch, step[0])

    bare_unet = type(unet).from_config(unet.config).to(dev)
    bare_unet.load_state_dict(unet.state_dict())
    bare_unet.train()
    opt = torch.optim.Adam(bare_unet.parameters(), lr=cfg.lr)
    noise_sched = DDPMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule)

    def bare_step() -> None:
        x0 = batch["image"] * 2 - 1
        noise = torch.randn_like(x0)
        t = torch.randint(0, cfg.train_timesteps, (x0.shape[0],), device=dev)
        pred = bare_unet(torch.cat([noise_sched.add_noise(x0, noise, t), batch["cond"] * 2 - 1], 1), t).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    plugin_step()  # warm-up
    bare_step()
    tp, tb = _paired_times(plugin_step, bare_step, args.train_repeats)
    print(f"\ntraining (s/step)              plugin      bare   plugin/bare", flush=True)
    print(f"  batch {args.batch}                    {tp:8.3f}  {tb:8.3f}   {tp / tb:10.3f}")


if __name__ == "__main__":
    main()
