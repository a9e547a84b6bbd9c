"""Registry, shapes, pix2pix reference sizes and gradient flow of every generator."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gbench import generators
from gbench.generators.pix2pix import PatchDiscriminator, Pix2PixConfig, UNetGenerator, num_downs_for, receptive_field

TINY = {"ngf": 8, "ndf": 8}


def _batch(n: int = 2, size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"cond": torch.rand(n, 1, size, size, generator=g), "image": torch.rand(n, 3, size, size, generator=g),
            "contour": (torch.rand(n, 1, size, size, generator=g) > 0.8).float()}


def test_registry() -> None:
    assert {"gan-binary", "gan-dist", "sharp-gan", "dummy"} <= set(generators.available())
    assert generators.create("gan-binary", **TINY).conditioning == "binary-mask"
    assert generators.create("gan-dist", **TINY).conditioning == "distance-map"
    sg = generators.create("sharp-gan", **TINY)
    assert sg.conditioning == "distance-map" and sg.config.beta == 1.0 and sg.config.lam == 0.1
    assert sg.name == "sharp-gan" and generators.create("gan-dist", **TINY).config.beta == 0.0
    with pytest.raises(KeyError, match="did you mean sharp-gan"):
        generators.create("sharp-gn")
    with pytest.raises(ValueError, match="unknown generator option.*ngff"):
        generators.create("gan-dist", ngff=3)
    with pytest.raises(ValueError, match="beta > 0"):
        generators.create("sharp-gan", beta=0.0)
    with pytest.raises(ValueError, match="multiple of 32"):
        generators.create("gan-dist", image_size=100)
    # adding a generator is one registration line; the name is checked
    with pytest.raises(ValueError, match="already registered"):
        generators.GENERATORS.register("gan-dist", "gbench.generators.pix2pix:gan_dist")


def test_pix2pix_reference_sizes() -> None:
    # pix2pix prints "[Network G] Total number of parameters : 54.414 M" for unet_256 with
    # 3 input channels and "[Network D] ... : 2.769 M" for the basic PatchGAN on 6 channels
    g = UNetGenerator(3, 3, 8, 64)
    d = PatchDiscriminator(6, 64, 3)
    assert round(sum(p.numel() for p in g.parameters()) / 1e6, 3) == 54.414
    assert round(sum(p.numel() for p in d.parameters()) / 1e6, 3) == 2.769
    assert receptive_field(3) == 70
    assert [num_downs_for(s) for s in (64, 96, 128, 256, 512)] == [6, 5, 7, 8, 8]
    # dropout 0.5 in exactly the three decoder blocks after the bottleneck
    drop = [i for i, blk in enumerate(g.decoder) if any(isinstance(m, nn.Dropout) for m in blk)]
    assert drop == [1, 2, 3]
    assert all(m.p == 0.5 for m in g.modules() if isinstance(m, nn.Dropout))


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_and_range(size: int) -> None:
    m = generators.create("gan-dist", image_size=size, **TINY)
    b = _batch(2, size)
    out = m.generate(b["cond"])
    assert out.shape == (2, 3, size, size) and out.min() >= 0 and out.max() <= 1
    # eval-mode inference: image k does not depend on the other images of the batch
    torch.testing.assert_close(m.generate(b["cond"][:1]), out[:1], rtol=0, atol=1e-6)
    assert m.G.training  # generate leaves the mode as it found it
    assert m.G(b["cond"] * 2 - 1).shape == (2, 3, size, size)
    logits = m.D(torch.cat([b["cond"], b["image"]], 1))
    assert logits.shape == (2, 1, size // 8 - 2, size // 8 - 2)  # 70x70 PatchGAN output grid
    with pytest.raises(ValueError, match=f"divisible by {size}"):
        m.G(torch.zeros(1, 1, size + 32, size + 32))


@pytest.mark.parametrize("name", ["gan-binary", "gan-dist", "sharp-gan", "dummy"])
def test_training_step_updates_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    m = generators.create(name, image_size=64, **({} if name == "dummy" else TINY))
    before = {k: v.detach().clone() for k, v in m.named_parameters()}
    logs = m.training_step(_batch(), 0)
    assert all(isinstance(v, float) for v in logs.values())
    unchanged = [k for k, v in m.named_parameters() if torch.equal(v, before[k])]
    assert unchanged == []
    assert all(p.requires_grad for p in m.parameters())  # D is unfrozen after the G update


def test_losses_are_the_papers_terms() -> None:
    torch.manual_seed(0)
    m = generators.create("sharp-gan", image_size=64, beta=0.5, lambda_l1=10.0, **TINY)
    logs = m.training_step(_batch(), 0)
    assert abs(logs["g_total"] - (logs["g_gan"] + 10.0 * logs["l1"] + 0.5 * logs["sharp"])) < 1e-4
    # D's BCE terms at initialisation are near log 2 (D outputs ~0.5)
    assert 0.3 < logs["d_real"] < 1.5 and 0.3 < logs["d_fake"] < 1.5


def test_sharpness_term_changes_the_generator_update() -> None:
    b = _batch()
    ref = generators.create("gan-dist", image_size=64, **TINY)
    sharp = generators.create("sharp-gan", image_size=64, **TINY)
    sharp.load_state_dict(ref.state_dict())
    torch.manual_seed(1)
    ref.training_step(b, 0)
    torch.manual_seed(1)
    sharp.training_step(b, 0)
    # same D update (the sharpness term only enters G's loss), different G update
    for k, v in ref.D.state_dict().items():
        torch.testing.assert_close(v, sharp.D.state_dict()[k], rtol=0, atol=0)
    assert not torch.equal(ref.G.encoder[0].weight, sharp.G.encoder[0].weight)


def test_config_round_trip() -> None:
    m = generators.create("sharp-gan", image_size=64, **TINY)
    again = generators.create("sharp-gan", **m.config_dict())
    assert again.config == m.config and isinstance(again.config.adam_betas, tuple)
    assert Pix2PixConfig().lr == 1e-4 and Pix2PixConfig().lambda_l1 == 100.0


def test_template_is_a_working_generator(tmp_path) -> None:  # noqa: ANN001
    """The how-to template trains and synthesizes once registered (in a throw-away registry entry)."""
    from gbench import generators
    from gbench.generators.train import train_generator
    from tests.generators.test_train import tiles

    generators.GENERATORS._items["template-test"] = "gbench.generators.template:template"
    try:
        res = train_generator("template-test", "tiles", tmp_path, profile="smoke", seed=0, steps=2, progress=False,
                              dataset=tiles(2))
        m = generators.load(res.checkpoint, "template-test")
        assert m.generate(torch.rand(1, 1, 64, 64)).shape == (1, 3, 64, 64)
    finally:
        del generators.GENERATORS._items["template-test"]
