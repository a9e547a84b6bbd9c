"""A mask-conditioned DDPM on ``diffusers``, as a gbench generator (public plugin API only).

Model: a ``diffusers.UNet2DModel`` whose input is the noisy image (3 channels, [-1, 1]) with the
conditioning map (scaled from [0, 1] to [-1, 1]) concatenated, ``in_channels = 3 + 1``; it
predicts the noise (epsilon). Conditioning: the per-nucleus distance map (``distance``, the
default, gbench's ``distance-map``) or the binary mask (``binary`` / ``binary-mask``).

Training (:meth:`DDPMModule.training_step`, driven by ``gbench.engine.fit`` through ``gbench
train-gen ddpm``, so checkpoints, seeds and ``--resume`` are gbench's): a ``DDPMScheduler``
(``train_timesteps`` steps, ``beta_schedule``) adds noise at a uniformly drawn timestep, loss =
MSE(predicted noise, noise); Adam (the profile's learning rate), gradient-norm clipping, an
exponential moving average of the weights (``ema_decay``; 0: off) that sampling uses. The noise
and timesteps of step ``s`` come from their own ``torch.Generator`` seeded by
``(init_seed, s)``: a resumed run draws what an uninterrupted one would.

Sampling (:meth:`DDPMModule.generate`): ``DDIMScheduler`` with ``sample_steps`` steps and
``eta = 0`` (deterministic given the starting noise). The starting noise of a crop comes from a
``torch.Generator`` seeded by ``sample_seed`` and a sha256 of the crop's own conditioning map, so
a crop's image does not depend on the other crops of its batch, nor on the batch size (up to float
rounding of batched convolutions), and the same seed gives the same samples. (The gbench contract
``generate(cond)`` passes no crop index; two identical maps get the same image.)

Sizes (``preset``): gbench's ``train-gen`` gives a plugin the profile's crop size, learning rate
and seed; the rest comes from :data:`PRESETS`, picked by ``preset`` (``auto``: by ``image_size``:
up to 64 px ``smoke``, up to 128 px ``demo``, larger ``paper``). Any field can be set with
``--set KEY=VALUE`` (``block_out_channels=[16,32]``, ``sample_steps=25``).

Frozen route: :class:`DDPMPretrained` (registered as ``ddpm-pretrained``) loads a ``last.pt`` of
``gbench train-gen ddpm`` or a folder written by :meth:`DDPMModule.save_pretrained` (a diffusers
``UNet2DModel`` folder plus ``gbench_ddpm.json``), for ``quality --generator ddpm-pretrained
--checkpoint X``, ``synthesize`` and ``reproduce``.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gbench.api import GeneratorModule

__all__ = ["DDPMConfig", "DDPMModule", "DDPMPretrained", "ddpm", "PRESETS", "build_unet", "sampler", "noise_scheduler",
           "initial_noise", "CONFIG_FILE"]

#: gbench's names of the maps this model takes (``binary`` / ``distance`` are accepted too).
_CONDITIONINGS = {"distance": "distance-map", "distance-map": "distance-map", "binary": "binary-mask",
                  "binary-mask": "binary-mask"}
#: The file beside a diffusers ``UNet2DModel`` folder holding the rest of the config.
CONFIG_FILE = "gbench_ddpm.json"

#: Per-profile defaults (``preset``). ``smoke``: CI, seconds. ``demo``: a few minutes on 2 CPU
#: cores (learns colour and layout, not texture). ``paper``: a GPU setting (256 px crops of the
#: ``paper`` profile, batch 16, lr 1e-4, 500 epochs from gbench's profile; 4 levels, 2 ResNet
#: blocks per level, self-attention at the two coarsest levels, EMA 0.9999, 50 DDIM steps).
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"block_out_channels": (8, 16), "layers_per_block": 1, "attention_levels": 0, "norm_groups": 4,
              "sample_steps": 2, "ema_decay": 0.0},
    "demo": {"block_out_channels": (16, 32, 64), "layers_per_block": 1, "attention_levels": 0, "norm_groups": 8,
             "sample_steps": 10, "ema_decay": 0.99},
    "paper": {"block_out_channels": (64, 128, 256, 512), "layers_per_block": 2, "attention_levels": 2,
              "norm_groups": 32, "sample_steps": 50, "ema_decay": 0.9999},
}


def _preset_for(image_size: int) -> str:
    return "smoke" if image_size <= 64 else "demo" if image_size <= 128 else "paper"


@dataclass(frozen=True)
class DDPMConfig:
    """Options of the mask-conditioned DDPM. Fields left at ``None`` / ``()`` take the preset's value.

    Attributes:
        conditioning: ``distance`` (default) or ``binary`` (gbench's ``distance-map`` / ``binary-mask``).
        image_size: training crop side (gbench's profile sets it); sampling works at any side
            divisible by ``2 ** (levels - 1)``.
        lr: Adam learning rate (gbench's profile sets it).
        init_seed: seeds the weights and the training noise (gbench's ``--seed``).
        preset: ``auto`` (by ``image_size``), ``smoke``, ``demo`` or ``paper`` (:data:`PRESETS`).
        block_out_channels: UNet widths per level.
        layers_per_block: ResNet blocks per level.
        attention_levels: how many of the coarsest levels get self-attention.
        norm_groups: GroupNorm groups (divides every width).
        train_timesteps: DDPM noise levels (1000).
        beta_schedule: ``linear`` (Ho et al.) or ``squaredcos_cap_v2`` (cosine, Nichol & Dhariwal).
        sample_steps: DDIM steps at sampling.
        sample_seed: seed of the sampling noise (with each map's hash).
        ema_decay: weight EMA used for sampling (0: off; warm-up ``min(decay, (1+s)/(10+s))``).
        grad_clip: gradient-norm clip (0: off).
    """

    conditioning: str = "distance-map"
    image_size: int = 128
    lr: float = 1e-4
    init_seed: int = 0
    preset: str = "auto"
    block_out_channels: tuple[int, ...] = ()
    layers_per_block: int | None = None
    attention_levels: int | None = None
    norm_groups: int | None = None
    train_timesteps: int = 1000
    beta_schedule: str = "linear"
    sample_steps: int | None = None
    sample_seed: int = 0
    ema_decay: float | None = None
    grad_clip: float = 1.0
    adam_betas: tuple[float, float] = field(default=(0.9, 0.999))

    def __post_init__(self) -> None:
        if self.conditioning not in _CONDITIONINGS:
            raise ValueError(f"conditioning must be distance or binary, got {self.conditioning!r}")
        object.__setattr__(self, "conditioning", _CONDITIONINGS[self.conditioning])
        preset = _preset_for(int(self.image_size)) if self.preset == "auto" else self.preset
        if preset not in PRESETS:
            raise ValueError(f"preset must be auto, {', '.join(PRESETS)}; got {self.preset!r}")
        object.__setattr__(self, "preset", preset)
        for name, value in PRESETS[preset].items():  # fill what was left open
            if getattr(self, name) in (None, ()):
                object.__setattr__(self, name, value)
        object.__setattr__(self, "block_out_channels", tuple(int(c) for c in self.block_out_channels))
        object.__setattr__(self, "adam_betas", tuple(float(b) for b in self.adam_betas))
        ch = self.block_out_channels
        if not ch or any(c <= 0 for c in ch):
            raise ValueError(f"block_out_channels must be positive widths, got {ch}")
        if any(c % self.norm_groups for c in ch):
            raise ValueError(f"norm_groups {self.norm_groups} must divide every width of {ch}")
        if self.image_size <= 0 or self.image_size % 2 ** (len(ch) - 1):
            raise ValueError(f"image_size must be a positive multiple of {2 ** (len(ch) - 1)}, got {self.image_size}")
        if not 0 <= self.attention_levels <= len(ch):
            raise ValueError(f"attention_levels must be in 0..{len(ch)}, got {self.attention_levels}")
        for name in ("layers_per_block", "train_timesteps", "sample_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.sample_steps > self.train_timesteps:
            raise ValueError(f"sample_steps ({self.sample_steps}) cannot exceed train_timesteps ({self.train_timesteps})")
        if self.beta_schedule not in ("linear", "squaredcos_cap_v2", "scaled_linear"):
            raise ValueError(f"beta_schedule must be linear, squaredcos_cap_v2 or scaled_linear, got {self.beta_schedule!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.lr <= 0 or self.grad_clip < 0:
            raise ValueError("lr must be positive and grad_clip non-negative")

    @property
    def cond_channels(self) -> int:
        return 1


def build_unet(config: DDPMConfig) -> Any:
    """The ``UNet2DModel`` of ``config`` (weights from diffusers' default initialisation)."""
    from diffusers import UNet2DModel

    levels = len(config.block_out_channels)
    attn = [i >= levels - config.attention_levels for i in range(levels)]
    down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn)
    up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn))
    return UNet2DModel(sample_size=config.image_size, in_channels=3 + config.cond_channels, out_channels=3,
                       block_out_channels=config.block_out_channels, layers_per_block=config.layers_per_block,
                       down_block_types=down, up_block_types=up, norm_num_groups=config.norm_groups,
                       attention_head_dim=8)


def noise_scheduler(config: DDPMConfig) -> Any:
    """The training ``DDPMScheduler`` (epsilon prediction)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=config.train_timesteps, beta_schedule=config.beta_schedule,
                         prediction_type="epsilon", clip_sample=True)


def sampler(config: DDPMConfig, steps: int | None = None) -> Any:
    """A ``DDIMScheduler`` on the training noise schedule, set to ``steps`` (default ``sample_steps``)."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler(num_train_timesteps=config.train_timesteps, beta_schedule=config.beta_schedule,
                          prediction_type="epsilon", clip_sample=True, set_alpha_to_one=True)
    sched.set_timesteps(int(steps or config.sample_steps))
    return sched


def initial_noise(cond: torch.Tensor, seed: int) -> torch.Tensor:
    """Starting noise ``(N, 3, H, W)`` on the CPU: crop k's from a generator seeded by ``seed`` and a
    sha256 of ``cond[k]`` (float32 bytes), so it depends on that crop's map alone."""
    maps = cond.detach().to("cpu", torch.float32).contiguous().numpy()
    out = []
    for m in maps:
        h = hashlib.sha256(int(seed).to_bytes(8, "little", signed=True) + np.ascontiguousarray(m).tobytes())
        g = torch.Generator().manual_seed(int.from_bytes(h.digest()[:8], "little") & (2**63 - 1))
        out.append(torch.randn((3, *m.shape[1:]), generator=g))
    return torch.stack(out)


@torch.no_grad()
def ddim_sample(unet: nn.Module, config: DDPMConfig, cond: torch.Tensor, steps: int | None = None) -> torch.Tensor:
    """DDIM (eta 0) from :func:`initial_noise`: images ``(N, 3, H, W)`` in [0, 1]."""
    sched = sampler(config, steps)
    c = cond.float() * 2.0 - 1.0
    x = initial_noise(cond, config.sample_seed).to(cond.device)
    for t in sched.timesteps:
        eps = unet(torch.cat([x, c], 1), t.to(cond.device)).sample
        x = sched.step(eps, t, x, eta=0.0).prev_sample
    return ((x.clamp(-1.0, 1.0) + 1.0) * 0.5).clamp(0.0, 1.0)


class DDPMModule(GeneratorModule):
    """Trainable mask-conditioned DDPM: ``unet`` (trained), ``ema`` (sampled; absent when
    ``ema_decay`` is 0), optimiser ``{"unet": Adam}``. ``training_step`` logs ``mse``."""

    #: a step is a plain backward/step (gbench's fp16 scaler is internal API): no ``--amp fp16``
    supports_fp16: ClassVar[bool] = False

    def __init__(self, config: DDPMConfig) -> None:
        super().__init__(config)
        with torch.random.fork_rng(devices=[]):  # weights from init_seed; the global RNG is left as it was
            torch.manual_seed(int(config.init_seed))
            self.unet = build_unet(config)
        if config.ema_decay > 0:
            self.ema = copy.deepcopy(self.unet).requires_grad_(False)
        self.noise_scheduler = noise_scheduler(config)
        self.optimizers = {"unet": torch.optim.Adam(self.unet.parameters(), lr=config.lr, betas=config.adam_betas)}
        self.__dict__["_unet_train"] = self.unet  # what training_step calls (a DDP wrapper replaces it)

    def wrap_ddp(self, wrap: Any) -> None:
        self.__dict__["_unet_train"] = wrap(self.unet)

    def _step_noise(self, step: int, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise and timesteps of training step ``step``: a CPU generator seeded by (init_seed, step, rank)."""
        rank = torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() else 0
        seed = (int(self.config.init_seed) * 1_000_003 + int(step)) * 1_009 + rank
        g = torch.Generator().manual_seed(seed & (2**63 - 1))
        noise = torch.randn(image.shape, generator=g)
        t = torch.randint(0, self.config.train_timesteps, (image.shape[0],), generator=g)
        return noise.to(image.device), t.to(image.device)

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> torch.Tensor:
        """The DDPM objective on ``batch``: MSE between the noise and the UNet's prediction of it."""
        x0 = batch["image"] * 2.0 - 1.0
        c = batch["cond"] * 2.0 - 1.0
        noise, t = self._step_noise(step, x0)
        xt = self.noise_scheduler.add_noise(x0, noise, t)
        pred = self._unet_train(torch.cat([xt, c], 1), t).sample
        return F.mse_loss(pred, noise)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        opt = self.optimizers["unet"]
        opt.zero_grad(set_to_none=True)
        loss = self.loss(batch, step)
        loss.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.unet.parameters(), self.config.grad_clip)
        opt.step()
        if self.config.ema_decay > 0:
            self._update_ema(step)
        return {"mse": loss.item()}

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        decay = min(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        for e, p in zip(self.ema.parameters(), self.unet.parameters()):
            e.lerp_(p.detach(), 1.0 - decay)
        for e, b in zip(self.ema.buffers(), self.unet.buffers()):
            e.copy_(b)

    @property
    def sampling_unet(self) -> nn.Module:
        return self.ema if self.config.ema_decay > 0 else self.unet

    @torch.no_grad()
    def generate(self, cond: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """Images for conditioning maps (DDIM, :func:`ddim_sample`), in eval mode.

        Args:
            cond: ``(N, 1, H, W)`` float in [0, 1].
            steps: DDIM steps (default ``config.sample_steps``).

        Returns:
            ``(N, 3, H, W)`` float in [0, 1].
        """
        net = self.sampling_unet
        was = net.training
        net.eval()
        try:
            return ddim_sample(net, self.config, cond, steps)
        finally:
            net.train(was)

    def deviations(self) -> list[dict[str, Any]]:
        """Not the Sharp-GAN paper's model at all: said once, in ``run.json``."""
        return [{"setting": "model", "value": "ddpm",
                 "note": f"mask-conditioned DDPM (diffusers UNet2DModel, preset {self.config.preset}, DDIM "
                         f"{self.config.sample_steps} steps); not a model of the Sharp-GAN paper"}]

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the sampling UNet as a diffusers folder plus :data:`CONFIG_FILE` (for ``ddpm-pretrained``)."""
        folder = Path(folder)
        self.sampling_unet.save_pretrained(str(folder))
        cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self.config).items()}
        (folder / CONFIG_FILE).write_text(json.dumps(cfg, indent=1, sort_keys=True), encoding="utf-8")
        return folder


def ddpm(**overrides: Any) -> DDPMModule:
    """``ddpm``: the trainable mask-conditioned DDPM; ``overrides`` are :class:`DDPMConfig` fields."""
    known = {f.name for f in dataclasses.fields(DDPMConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"unknown ddpm option(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
    return DDPMModule(DDPMConfig(**overrides))


class DDPMPretrained(nn.Module):
    """Frozen ``ddpm-pretrained``: a trained DDPM gbench runs but does not train.

    Args:
        checkpoint: ``last.pt`` of ``gbench train-gen ddpm`` (the EMA weights when it has them), or a
            :meth:`DDPMModule.save_pretrained` folder or its ``gbench_ddpm.json`` (gbench's
            ``--checkpoint`` takes a file). There are no default weights.
        sample_steps: DDIM steps (default: the checkpoint's).
        sample_seed: seed of the sampling noise (default: the checkpoint's).
    """

    def __init__(self, checkpoint: str | None = None, sample_steps: int | None = None,
                 sample_seed: int | None = None) -> None:
        super().__init__()
        if checkpoint is None:
            raise ValueError("ddpm-pretrained has no default weights: give --checkpoint (a train-gen last.pt or a "
                             "save_pretrained folder)")
        path = Path(checkpoint)
        if path.name == CONFIG_FILE:  # gbench's --checkpoint takes a file: the folder's config names it
            path = path.parent
        if path.is_dir():
            from diffusers import UNet2DModel

            fields = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
            config = DDPMConfig(**fields)
            unet = UNet2DModel.from_pretrained(str(path))
        else:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
            meta = ckpt.get("meta") or {} if isinstance(ckpt, dict) else {}
            if meta.get("generator") != "ddpm" or "config" not in meta:
                raise ValueError(f"{path.name} is not a checkpoint of gbench train-gen ddpm "
                                 f"(it holds {meta.get('generator')!r})")
            module = DDPMModule(DDPMConfig(**meta["config"]))
            module.load_state_dict(ckpt["module"])
            config, unet = module.config, module.sampling_unet
        changes = {k: v for k, v in (("sample_steps", sample_steps), ("sample_seed", sample_seed)) if v is not None}
        self.config = dataclasses.replace(config, **changes) if changes else config
        self.unet = unet.eval().requires_grad_(False)
        self.conditioning = "distance" if self.config.conditioning == "distance-map" else "binary"

    def generate(self, maps: torch.Tensor) -> torch.Tensor:
        return ddim_sample(self.unet, self.config, maps)
