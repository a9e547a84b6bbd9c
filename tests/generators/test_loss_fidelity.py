"""The paper's Eq. 1 literally (lambda_l1=0, gan_loss=minimax) and the deviations list."""
from __future__ import annotations

import pytest
import torch

from gbench import generators
from gbench.generators.base import to_signed, to_unit
from gbench.generators.pix2pix import Pix2PixConfig
from gbench.generators.sharp_gan import sharpness_loss
from tests.generators.test_models import TINY, _batch


def test_eq1_literally() -> None:
    """With lambda_l1=0 and the minimax G loss, G's objective is E[log(1 - D(x, G(x)))] + beta L_sharp."""
    m = generators.create("sharp-gan", image_size=64, lambda_l1=0.0, gan_loss="minimax", **TINY)
    assert m.deviations()[0]["setting"] == "beta"  # only the values the paper does not give
    assert {d["setting"] for d in m.deviations()} == {"beta", "lam", "contour_map"}
    b = _batch()
    cond, real = to_signed(b["cond"]), to_signed(b["image"])
    torch.manual_seed(0)
    fake = m.G(cond)
    total, g_gan, l1, sharp = m.generator_loss(cond, fake, real, b["contour"])
    # the paper's terms computed directly: D's probability, Eq. 3, Eq. 4
    p = torch.sigmoid(m.D(torch.cat([cond, fake], 1)))
    eq3 = torch.log(1 - p).mean()
    eq4 = sharpness_loss(b["contour"], to_unit(fake), m.config.lam)
    torch.testing.assert_close(total, eq3 + m.config.beta * eq4, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_gan, eq3, rtol=1e-5, atol=1e-6)
    assert float(l1.detach()) > 0  # the L1 distance is there (logged) but not in the objective
    # G's gradient does not depend on the real image (no reconstruction term)
    g1 = torch.autograd.grad(total, fake, retain_graph=True)[0]
    other = to_signed(torch.rand_like(b["image"]))
    total2 = m.generator_loss(cond, fake, other, b["contour"])[0]
    g2 = torch.autograd.grad(total2, fake)[0]
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)


def test_default_l1_enters_the_objective_and_is_a_listed_deviation() -> None:
    m = generators.create("sharp-gan", image_size=64, **TINY)
    assert m.config.lambda_l1 == 100.0 and m.config.gan_loss == "non-saturating"
    b = _batch()
    cond, real = to_signed(b["cond"]), to_signed(b["image"])
    with torch.no_grad():
        fake = m.G(cond)
        total, g_gan, l1, sharp = m.generator_loss(cond, fake, real, b["contour"])
        logit = m.D(torch.cat([cond, fake], 1))
    torch.testing.assert_close(g_gan, -torch.nn.functional.logsigmoid(logit).mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(total, g_gan + 100.0 * l1 + 1.0 * sharp, rtol=1e-5, atol=1e-5)
    dev = {d["setting"]: d for d in m.deviations()}
    assert set(dev) == {"lambda_l1", "gan_loss", "beta", "lam", "contour_map"}
    assert dev["lambda_l1"]["value"] == 100.0 and "not in the paper's Eq. 1" in dev["lambda_l1"]["note"]
    assert "paper gives no value" in dev["beta"]["note"] and "paper gives no value" in dev["lam"]["note"]
    # the baselines without the sharpness term: only the loss-form deviations
    assert {d["setting"] for d in generators.create("gan-binary", **TINY).deviations()} == {"lambda_l1", "gan_loss"}
    assert generators.create("gan-dist", lambda_l1=0, gan_loss="minimax", **TINY).deviations() == []


def test_minimax_training_step_runs_and_bad_value_is_refused() -> None:
    m = generators.create("gan-dist", image_size=64, lambda_l1=0.0, gan_loss="minimax", **TINY)
    logs = m.training_step(_batch(), 0)
    assert logs["g_gan"] < 0  # log of a probability
    assert abs(logs["g_total"] - logs["g_gan"]) < 1e-6
    with pytest.raises(ValueError, match="gan_loss"):
        Pix2PixConfig(gan_loss="hinge")  # type: ignore[arg-type]
