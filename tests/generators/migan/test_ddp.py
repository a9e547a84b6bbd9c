"""MI-GAN under DDP (2 gloo processes on the CPU), tested like the pix2pix generators
(``tests/engine/test_engine.py::test_ddp_two_cpu_processes_agree``): both ranks end with the same
weights although they start from different ones, the weights moved, both log the same (rank-averaged)
losses, and only rank 0 writes the checkpoints."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from tests.engine.test_engine import _free_port, _is_buffer

TINY = dict(image_size=16, g1_width=4, d1_width=4, g2_width=4, d2_width=2, n_critic=2)


def _worker(rank: int, world: int, port: int, out: str, critic_norm: str) -> None:
    import torch.distributed as dist

    from gbench.data.multifocus import stack_array
    from gbench.data.resolve import load_stacks
    from gbench.generators.mi_gan import MIGAN, MIGANConfig
    from gbench.generators.mi_gan_train import train_migan, train_phase

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        stacks = stack_array(load_stacks("synthetic-cells:siha", "train", n=6, size=16))
        # a different initialisation per rank: DDP must start every rank from rank 0's weights
        gan = MIGAN(MIGANConfig(critic_norm=critic_norm, **TINY), seed=rank)
        init = {k: v.clone() for k, v in gan.state_dict().items()}
        hist = {}
        for phase in ("g1", "g2"):
            res = train_phase(gan, stacks, phase, steps=3, batch_size=4, seed=0, progress=False,
                              out_dir=Path(out) / critic_norm / phase, device="cpu")
            hist[phase] = res.history
        # the command's entry point: both ranks train, rank 0 alone writes the model and run.json
        run = train_migan("synthetic-cells:siha", Path(out) / critic_norm / "run", profile="smoke", seed=0, steps=1,
                          batch_size=4, n_train=4, progress=False, device="cpu", critic_norm=critic_norm, **TINY)
        hist["run_record"] = bool(run.record)
        torch.save({"state": gan.state_dict(), "init": init, "history": hist},
                   Path(out) / f"{critic_norm}-rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("critic_norm", ["layer", "batch"])  # demo's critic, the paper's (BN) critic
def test_mi_gan_ddp_two_cpu_processes_agree(tmp_path: Path, critic_norm: str) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), critic_norm), nprocs=2, join=True)
    r0 = torch.load(tmp_path / f"{critic_norm}-rank0.pt")
    r1 = torch.load(tmp_path / f"{critic_norm}-rank1.pt")
    keys = [k for k in r0["state"] if not _is_buffer(k)]
    assert any(k.startswith("g1.") for k in keys) and any(k.startswith("d2.") for k in keys)
    # the ranks started apart ...
    assert any(not torch.equal(r0["init"][k], r1["init"][k]) for k in keys)
    for k in keys:  # ... and end equal: rank 0's initial weights, then the same averaged gradients
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    moved = [k for k in keys if not torch.equal(r0["init"][k], r0["state"][k])]
    assert any(k.startswith("g1.") for k in moved) and any(k.startswith("d1.") for k in moved)
    assert any(k.startswith("g2.") for k in moved) and any(k.startswith("d2.") for k in moved)
    assert r0["history"]["run_record"] and not r1["history"]["run_record"]
    run_json = json.loads((tmp_path / critic_norm / "run" / "run.json").read_text())
    assert run_json["phases"]["g1"]["steps"] == 1 and (tmp_path / critic_norm / "run" / "mi-gan.pt").is_file()
    for phase in ("g1", "g2"):  # how it ran is recorded: 2 processes, float32 (WGAN-GP is never autocast)
        assert run_json["phases"][phase]["world_size"] == 2 and run_json["phases"][phase]["runtime"]["amp"] == "off"
    assert run_json["provenance"]["runtime"]["amp"] == "off"
    for phase in ("g1", "g2"):  # losses averaged over ranks: both log the same numbers
        h0, h1 = r0["history"][phase], r1["history"][phase]
        assert len(h0) == 3
        for key in ("loss_d", "gp", "wasserstein", "loss_g"):
            assert [h[key] for h in h0] == [h[key] for h in h1], (phase, key)
        ck = torch.load(tmp_path / critic_norm / phase / "checkpoints" / "last.pt", weights_only=False)
        assert ck["world_size"] == 2 and ck["step"] == 3
