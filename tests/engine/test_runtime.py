"""The GPU path on the CPU: DataLoader workers give the same batches and weights, AMP, channels-last."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from gbench.core.runtime import Runtime
from gbench.engine import StepLoader, backward, fit, optimizer_step


class NoisyImages:
    """4x8x8 images drawn from their own rng (a crop-and-augment stand-in)."""

    def __init__(self, n: int = 7) -> None:
        self.base = np.random.default_rng(0).random((n, 3, 8, 8), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.base)

    def get(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        x = self.base[index] + rng.normal(scale=0.1, size=(3, 8, 8)).astype(np.float32)
        return {"x": np.flip(x, axis=int(rng.integers(1, 3))).copy(), "y": np.float32(x.mean())}


class ConvModule(nn.Module):
    """Conv + BatchNorm + dropout regressor; ``supports_fp16``: steps through the engine helpers."""

    supports_fp16 = True

    def __init__(self, dropout: float = 0.2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(dropout),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1))
        self.optimizers = {"adam": torch.optim.Adam(self.net.parameters(), lr=1e-2)}

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        opt = self.optimizers["adam"]
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(self.net(batch["x"]).float()[:, 0], batch["y"])
        backward(self, loss)
        optimizer_step(self, opt)
        return {"mse": loss.item()}


class PlainModule(ConvModule):
    supports_fp16 = False


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every engine test uses the shared ``one_thread`` fixture of tests/conftest.py."""


def _weights(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def test_worker_batches_are_the_inline_batches() -> None:
    loader = StepLoader(NoisyImages(), batch_size=3, seed=5)
    inline = list(loader.batches(0, 6))
    for workers in (1, 2):
        got = list(loader.batches(0, 6, workers=workers))
        assert len(got) == 6
        for a, b in zip(inline, got):
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) for k in a)
    # a later window is the same batches as the whole stream's (resume)
    tail = list(loader.batches(4, 6, workers=2))
    assert all(torch.equal(tail[i]["x"], inline[4 + i]["x"]) for i in range(2))
    # and the batches differ from step to step (the comparison above could not pass by accident)
    assert not torch.equal(inline[0]["x"], inline[1]["x"])


def test_fit_with_workers_gives_the_same_weights() -> None:
    runs = {}
    for workers in (0, 2):
        module = ConvModule()
        res = fit(module, StepLoader(NoisyImages(), 3, seed=1), max_steps=6, seed=2, progress=False, device="cpu",
                  runtime=Runtime(workers=workers))
        assert res.runtime["workers"] == workers and res.runtime["amp"] == "off" and res.runtime["deterministic"]
        assert 0.0 <= res.data_wait_s <= res.wall_time_s
        runs[workers] = (_weights(module), [h["mse"] for h in res.history])
    (w0, h0), (w2, h2) = runs[0], runs[2]
    assert h0 == h2
    assert w0.keys() == w2.keys() and all(torch.equal(w0[k], w2[k]) for k in w0)


def test_runtime_resolves_per_device_and_checks_values() -> None:
    assert Runtime().resolve("cpu") == Runtime(amp="off", channels_last=False, workers=0, deterministic=True)
    cuda = Runtime().resolve("cuda")
    assert cuda.amp == "bf16" and cuda.channels_last and not cuda.deterministic and 1 <= cuda.workers <= 8
    assert Runtime(amp="off", workers=3).resolve("cuda").workers == 3
    with pytest.raises(ValueError, match="--amp"):
        Runtime(amp="fp32")
    with pytest.raises(ValueError, match="--workers"):
        Runtime(workers=-1)
    assert Runtime(amp="bf16", workers=4).key() == {"amp": "bf16"}


def _run(module: nn.Module, runtime: Runtime) -> tuple[dict[str, torch.Tensor], list[float]]:
    res = fit(module, StepLoader(NoisyImages(), 3, seed=1), max_steps=4, seed=2, progress=False, device="cpu",
              runtime=runtime)
    assert res.runtime["amp"] == (runtime.amp or "off")
    return _weights(module), [h["mse"] for h in res.history]


def test_amp_and_channels_last_on_the_cpu() -> None:
    w32, h32 = _run(ConvModule(), Runtime())
    w16, h16 = _run(ConvModule(), Runtime(amp="bf16"))
    assert all(np.isfinite(h16))
    assert h16 != h32  # autocast was on: bfloat16 convolutions round differently
    np.testing.assert_allclose(h16, h32, rtol=0.1)
    wf, hf = _run(ConvModule(), Runtime(amp="fp16"))  # gradient scaler through backward/optimizer_step
    assert all(np.isfinite(hf))
    with pytest.raises(ValueError, match="fp16 needs loss scaling"):
        _run(PlainModule(), Runtime(amp="fp16"))
    # NHWC: the same numbers up to summation order (no dropout: its mask follows the memory layout)
    w32, h32 = _run(ConvModule(dropout=0.0), Runtime())
    module = ConvModule(dropout=0.0)
    wcl, hcl = _run(module, Runtime(channels_last=True))
    assert module.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(hcl, h32, rtol=1e-5)  # (weights: Adam turns ulps of near-zero gradients into lr steps)
    assert "grad_scaler" not in module.__dict__  # fit hands the scaler back


def test_cudnn_benchmark_flag_is_restored() -> None:
    before = torch.backends.cudnn.benchmark
    res = fit(ConvModule(), StepLoader(NoisyImages(), 3, seed=1), max_steps=1, seed=0, progress=False, device="cpu",
              runtime=Runtime(deterministic=False))
    assert res.runtime["deterministic"] is False and res.runtime["cudnn_benchmark"] is False  # CPU: no cuDNN
    assert torch.backends.cudnn.benchmark == before
    assert dataclasses.asdict(Runtime())["amp"] is None
