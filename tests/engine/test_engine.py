"""The training loop: step-indexed data, exact resume, history, DDP on two CPU processes (gloo)."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gbench.engine import Callback, EarlyStopping, FitContext, StepLoader, fit, load_checkpoint


class NoisyPoints:
    """Items drawn from their own rng: a fixed point plus augmentation noise."""

    def __init__(self, n: int = 10) -> None:
        self.x = np.random.default_rng(1).normal(size=(n, 4)).astype(np.float32)
        self.y = (self.x @ np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32))[:, None]

    def __len__(self) -> int:
        return len(self.x)

    def get(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"x": self.x[index] + rng.normal(scale=0.01, size=4).astype(np.float32), "y": self.y[index],
                "index": np.int64(index)}


class TinyModule(nn.Module):
    """Linear model with dropout (uses the global torch RNG) and BatchNorm (buffers), Adam."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 1))
        self.optimizers = {"main": torch.optim.Adam(self.net.parameters(), lr=1e-2)}
        self._train_net: nn.Module = self.net

    def wrap_ddp(self, wrap) -> None:
        self.__dict__["_train_net"] = wrap(self.net)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        opt = self.optimizers["main"]
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(self._train_net(batch["x"]), batch["y"])
        loss.backward()
        opt.step()
        return {"mse": loss.item()}


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every engine test uses the shared ``one_thread`` fixture of tests/conftest.py."""


def _params(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def test_step_loader_is_stateless_and_covers_epochs() -> None:
    ds = NoisyPoints(10)
    a = StepLoader(ds, batch_size=4, seed=3)
    b = StepLoader(ds, batch_size=4, seed=3)
    # batch 7 asked cold equals batch 7 asked after all the others
    for s in range(7):
        a.batch(s)
    torch.testing.assert_close(a.batch(7), b.batch(7), rtol=0, atol=0)
    # positions 0..19 of the stream are two permutations of the dataset
    idx = [i for s in range(5) for _, i in a.indices(s)]
    assert sorted(idx[:10]) == list(range(10)) and sorted(idx[10:20]) == list(range(10))
    assert idx[:10] != idx[10:20]
    # different seed, different order
    assert [i for _, i in StepLoader(ds, 4, seed=4).indices(0)] != [i for _, i in a.indices(0)]
    # DDP shards: contiguous, disjoint, union = the global batch, same augmentation draws
    r0, r1 = a.with_rank(2, 0), a.with_rank(2, 1)
    for s in (0, 3):
        assert r0.indices(s) + r1.indices(s) == a.indices(s)
        torch.testing.assert_close(torch.cat([r0.batch(s)["x"], r1.batch(s)["x"]]), a.batch(s)["x"], rtol=0, atol=0)
    # odd global batch: near-equal shards, no duplicates
    c = StepLoader(ds, batch_size=5, seed=0)
    assert [len(c.with_rank(2, r).indices(0)) for r in (0, 1)] == [3, 2]
    with pytest.raises(ValueError, match="empty"):
        StepLoader([], 2, 0)
    with pytest.raises(ValueError, match="smaller than the world size"):
        StepLoader(ds, 1, 0, num_replicas=2)
    assert a.steps_for_epochs(3) == 8


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    ds = NoisyPoints(10)
    torch.manual_seed(0)
    full = TinyModule()
    torch.manual_seed(0)
    part = TinyModule()
    torch.testing.assert_close(_params(full), _params(part), rtol=0, atol=0)

    r_full = fit(full, StepLoader(ds, 4, seed=5), max_steps=6, seed=5, out_dir=tmp_path / "full", progress=False,
                 checkpoint_every=100)
    r1 = fit(part, StepLoader(ds, 4, seed=5), max_steps=3, seed=5, out_dir=tmp_path / "part", progress=False)
    # a fresh process would rebuild the model from another seed: resume must overwrite all of it
    torch.manual_seed(123)
    resumed = TinyModule()
    r2 = fit(resumed, StepLoader(ds, 4, seed=5), max_steps=6, seed=5, out_dir=tmp_path / "part", resume=True,
             progress=False)
    assert r1.steps == 3 and r2.start_step == 3 and r2.steps == 6
    a, b = _params(full), _params(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the optimiser states agree too, and the history is continuous and identical
    sa = full.optimizers["main"].state_dict()["state"]
    sb = resumed.optimizers["main"].state_dict()["state"]
    for k in sa:
        assert torch.equal(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"])
    assert [h["step"] for h in r2.history] == [1, 2, 3, 4, 5, 6]
    assert [h["mse"] for h in r2.history] == [h["mse"] for h in r_full.history]
    ck = load_checkpoint(tmp_path / "part" / "checkpoints" / "last.pt")
    assert ck["step"] == 6 and ck["seed"] == 5 and len(ck["history"]) == 6
    assert (tmp_path / "part" / "history.csv").read_text().splitlines()[0] == "step,mse"
    # without the checkpoint-free control: a different seed gives different weights
    torch.manual_seed(0)
    other = TinyModule()
    fit(other, StepLoader(ds, 4, seed=6), max_steps=6, seed=6, progress=False)
    assert not torch.equal(_params(other)["net.0.weight"], a["net.0.weight"])
    # resuming an already finished run does nothing
    r3 = fit(resumed, StepLoader(ds, 4, seed=5), max_steps=6, seed=5, out_dir=tmp_path / "part", resume=True,
             progress=False)
    assert r3.start_step == 6 and r3.steps == 6


def test_fit_learns_and_calls_callbacks(tmp_path: Path) -> None:
    class Recorder(Callback):
        def __init__(self) -> None:
            self.steps: list[int] = []
            self.ckpts: list[int] = []

        def on_step_end(self, ctx: FitContext, step: int, logs: dict[str, float]) -> None:
            self.steps.append(step)

        def on_checkpoint(self, ctx: FitContext, step: int, path: Path) -> None:
            assert path.is_file()
            self.ckpts.append(step)

    torch.manual_seed(0)
    m = TinyModule()
    rec = Recorder()
    res = fit(m, StepLoader(NoisyPoints(10), 5, seed=0), max_steps=60, seed=0, out_dir=tmp_path, progress=False,
              callbacks=[rec], checkpoint_every=25)
    assert rec.steps == list(range(1, 61)) and rec.ckpts == [25, 50, 60]
    assert res.mean("mse", last=10) < 0.5 * res.mean("mse", first=10)
    assert not list((tmp_path / "checkpoints").glob("*.tmp*"))


def test_fit_rejects_bad_input(tmp_path: Path) -> None:
    ds = StepLoader(NoisyPoints(4), 2, seed=0)
    class NoOpt(nn.Module):
        def training_step(self, batch: object, step: int) -> dict[str, float]:
            return {}

    with pytest.raises(ValueError, match="optimisers"):
        fit(NoOpt(), ds, max_steps=1, seed=0, progress=False)
    with pytest.raises(ValueError, match="max_steps"):
        fit(TinyModule(), ds, max_steps=0, seed=0)
    with pytest.raises(ValueError, match="resume=True needs out_dir"):
        fit(TinyModule(), ds, max_steps=1, seed=0, resume=True)
    fit(TinyModule(), ds, max_steps=1, seed=0, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="seed 0, not 1"):
        fit(TinyModule(), StepLoader(NoisyPoints(4), 2, seed=1), max_steps=2, seed=1, out_dir=tmp_path, resume=True,
            progress=False)


def _scripted(values: list[float]):
    """A validate function returning the given values in turn (as ``{"v": value}``)."""
    it = iter(values)
    return lambda module: {"v": next(it)}


def _mse(module: TinyModule) -> dict[str, float]:
    """A real validation: eval-mode MSE on the clean points (deterministic given the weights)."""
    ds = NoisyPoints(10)
    module.eval()
    with torch.inference_mode():
        return {"mse": float(nn.functional.mse_loss(module.net(torch.from_numpy(ds.x)), torch.from_numpy(ds.y)))}


def test_early_stopping_stops_and_restores_the_best_weights(tmp_path: Path) -> None:
    ds = NoisyPoints(10)
    torch.manual_seed(0)
    m = TinyModule()
    # best at step 4, then two validations without improvement (patience 2): stop after step 8
    es = EarlyStopping(_scripted([1.0, 0.5, 0.6, 0.7, 0.1, 0.1]), every=2, monitor="v", patience=2,
                       best_path=tmp_path / "checkpoints" / "best.pt")
    res = fit(m, StepLoader(ds, 4, seed=5), max_steps=12, seed=5, out_dir=tmp_path, progress=False, callbacks=[es],
              keep_optimizer_state=False)
    assert res.stopped_early and res.steps == 8 and "did not improve for 2 validations" in res.stop_reason
    assert [v["step"] for v in es.validations] == [2, 4, 6, 8] and es.best_step == 4 and es.best == 0.5
    assert [h["step"] for h in res.history] == list(range(1, 9))
    # the module holds the weights after step 4: the same as a plain 4-step run
    torch.manual_seed(0)
    ref = TinyModule()
    fit(ref, StepLoader(ds, 4, seed=5), max_steps=4, seed=5, progress=False)
    for k, v in ref.state_dict().items():
        assert torch.equal(m.state_dict()[k], v), k
    # last.pt: the stop step's weights, no optimiser state; best.pt: step 4's weights
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["step"] == 8 and last["finished"] and last["stopped"] == res.stop_reason
    assert "optimizers" not in last and "best_weights" not in last["callbacks"]["early_stopping"]
    assert not torch.equal(last["module"]["net.0.weight"], ref.state_dict()["net.0.weight"])
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["step"] == 4 and torch.equal(best["module"]["net.0.weight"], ref.state_dict()["net.0.weight"])
    # resuming the stopped run trains nothing more and still hands back the best weights
    torch.manual_seed(9)
    again = TinyModule()
    es2 = EarlyStopping(_scripted([]), every=2, monitor="v", patience=2, best_path=tmp_path / "checkpoints" / "best.pt")
    res2 = fit(again, StepLoader(ds, 4, seed=5), max_steps=12, seed=5, out_dir=tmp_path, resume=True, progress=False,
               callbacks=[es2], keep_optimizer_state=False)
    assert res2.start_step == 8 and res2.steps == 8 and res2.stopped_early and es2.best_step == 4
    assert torch.equal(again.state_dict()["net.0.weight"], ref.state_dict()["net.0.weight"])


def test_early_stopping_max_mode_min_delta_and_no_patience() -> None:
    ds = NoisyPoints(10)
    torch.manual_seed(0)
    m = TinyModule()
    # mode max: 0.3 -> 0.5 improves, 0.52 is within min_delta 0.05 (no improvement), never stops (patience 0)
    es = EarlyStopping(_scripted([0.3, 0.5, 0.52, 0.4, 0.2]), every=1, monitor="v", mode="max", min_delta=0.05)
    res = fit(m, StepLoader(ds, 4, seed=1), max_steps=5, seed=1, progress=False, callbacks=[es])
    assert not res.stopped_early and res.steps == 5 and es.best_step == 2 and es.bad == 3
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(_scripted([]), every=1, monitor="v", mode="up")


def test_resume_mid_run_with_early_stopping_is_exact(tmp_path: Path) -> None:
    ds = NoisyPoints(10)

    def run(out: Path, validate, resume: bool = False) -> tuple[TinyModule, EarlyStopping, object]:
        torch.manual_seed(0 if not resume else 77)  # a resumed process rebuilds the model from anything
        m = TinyModule()
        es = EarlyStopping(validate, every=3, monitor="mse", patience=50, best_path=out / "checkpoints" / "best.pt")
        res = fit(m, StepLoader(ds, 4, seed=3), max_steps=15, seed=3, out_dir=out, progress=False, callbacks=[es],
                  checkpoint_every=3, resume=resume, keep_optimizer_state=False)
        return m, es, res

    def val(module: TinyModule) -> dict[str, float]:
        """The real MSE, made worse everywhere but at step 6: the best weights are older than the
        checkpoint the run is resumed from, so they must come back from it."""
        step = int(next(iter(module.optimizers["main"].state.values()))["step"])
        return {"mse": _mse(module)["mse"] + (0.0 if step == 6 else 100.0)}

    full, es_full, _ = run(tmp_path / "full", val)
    assert es_full.best_step == 6
    calls = {"n": 0}

    def killed(module: TinyModule) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 4:  # the validation of step 12: last.pt holds step 9
            raise KeyboardInterrupt
        return val(module)

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", killed)
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["step"] == 9
    (tmp_path / "cut" / "checkpoints" / "best.pt").unlink(missing_ok=True)  # not written before the end
    resumed, es_res, res = run(tmp_path / "cut", val, resume=True)
    assert res.start_step == 9  # type: ignore[attr-defined]
    assert es_res.validations == es_full.validations and es_res.best_step == es_full.best_step
    for k, v in full.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k
    # the best weights came through the checkpoint (the killed process's memory is gone)
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "best.pt")["step"] == es_full.best_step


def test_finished_run_without_optimiser_state_cannot_be_extended(tmp_path: Path) -> None:
    ds = StepLoader(NoisyPoints(10), 4, seed=0)
    fit(TinyModule(), ds, max_steps=3, seed=0, out_dir=tmp_path, progress=False, keep_optimizer_state=False)
    ck = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert ck["finished"] and "optimizers" not in ck
    assert fit(TinyModule(), ds, max_steps=3, seed=0, out_dir=tmp_path, resume=True, progress=False).start_step == 3
    with pytest.raises(ValueError, match="optimiser state was dropped"):
        fit(TinyModule(), ds, max_steps=6, seed=0, out_dir=tmp_path, resume=True, progress=False)
    # with the optimiser state kept, the finished run can be extended
    fit(TinyModule(), ds, max_steps=3, seed=0, out_dir=tmp_path / "keep", progress=False)
    assert fit(TinyModule(), ds, max_steps=6, seed=0, out_dir=tmp_path / "keep", resume=True, progress=False).steps == 6


def test_resume_removes_temp_files_of_a_killed_run(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ds = StepLoader(NoisyPoints(10), 4, seed=0)
    fit(TinyModule(), ds, max_steps=2, seed=0, out_dir=tmp_path, progress=False)
    orphans = [tmp_path / "checkpoints" / f".last.pt.{dead.pid}.a1b2c3d4.tmp.pt",
               tmp_path / "samples" / f".step-000002.png.{dead.pid}.zz_9yy8x.tmp.png",
               tmp_path / ".history.csv.q1w2e3r4.tmp.csv"]  # an older gbench's name, without a pid
    live = tmp_path / "checkpoints" / f".last.pt.{os.getpid()}.abcdefgh.tmp.pt"  # a writer still running
    for p in orphans + [live]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half a file")
    keep = tmp_path / "samples" / "step-000002.png"
    keep.write_bytes(b"a result")
    fit(TinyModule(), ds, max_steps=4, seed=0, out_dir=tmp_path, progress=False, resume=True)
    assert not any(p.exists() for p in orphans)
    assert live.exists() and keep.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    import dataclasses

    import torch.distributed as dist

    from gbench.core.profiles import SMOKE
    from gbench.generators.train import train_generator
    from tests.generators.test_train import TINY, tiles

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(100 + rank)  # different initial weights: DDP must broadcast rank 0's
        m = TinyModule()
        res = fit(m, StepLoader(NoisyPoints(10), 4, seed=2), max_steps=4, seed=2, out_dir=Path(out) / "tiny",
                  progress=False, device="cpu")
        # early stopping decided by rank 0's callback: every rank stops after the same step
        es = EarlyStopping(_scripted([1.0, 2.0, 3.0]), every=1, monitor="v", patience=2)
        stop = fit(TinyModule(), StepLoader(NoisyPoints(10), 4, seed=2), max_steps=10, seed=2, progress=False,
                   device="cpu", callbacks=[es])
        # the GAN module through the training entry point: G and the (fake, real) D pair wrapped, D frozen
        # for the G update (no gradient, so DDP must not wait for one)
        prof = dataclasses.replace(SMOKE, generator=dataclasses.replace(SMOKE.generator, batch_size=4))
        gan = train_generator("sharp-gan", "tiles", Path(out) / "gan", profile=prof,
                              seed=0, steps=2, overrides={**TINY, "init_seed": rank}, progress=False,
                              dataset=tiles(2), device="cpu")
        torch.save({"params": _params(m), "history": res.history, "gan": _params(gan.module),
                    "gan_history": gan.fit.history, "stop": (stop.steps, stop.stopped_early)},
                   Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _is_buffer(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked"))


@pytest.mark.slow
def test_ddp_two_cpu_processes_agree(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    # BatchNorm buffers are broadcast from rank 0 at each forward, each rank keeps its own last update
    for part in ("params", "gan"):
        keys = [k for k in r0[part] if not _is_buffer(k)]
        assert keys
        for k in keys:
            assert torch.equal(r0[part][k], r1[part][k]), (part, k)
    # the GAN did train (weights moved away from rank 0's initialisation)
    from gbench import generators

    init = generators.create("sharp-gan", image_size=64, ngf=8, ndf=8, init_seed=0).state_dict()
    assert not torch.equal(init["G.encoder.0.weight"], r0["gan"]["G.encoder.0.weight"])
    assert r0["stop"] == r1["stop"] == (3, True)
    # losses in the history are averaged over ranks, so both ranks log the same numbers
    assert [h["mse"] for h in r0["history"]] == [h["mse"] for h in r1["history"]]
    assert [h["l1"] for h in r0["gan_history"]] == [h["l1"] for h in r1["gan_history"]]
    ck = load_checkpoint(tmp_path / "tiny" / "checkpoints" / "last.pt")  # written by rank 0 only
    assert ck["world_size"] == 2 and len(ck["rng"]) == 2 and ck["step"] == 4
    torch.testing.assert_close(ck["module"]["net.0.weight"], r0["params"]["net.0.weight"], rtol=0, atol=0)
    assert (tmp_path / "gan" / "run.json").is_file()
    assert json.loads((tmp_path / "gan" / "run.json").read_text())["world_size"] == 2
