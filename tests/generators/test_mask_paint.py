"""mask-paint, the Table 1 floor: two mean colours from one pass, usable by every generator command."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gbench import generators
from gbench.core.profiles import SMOKE
from gbench.engine import StepLoader
from gbench.generators.train import CropDataset, train_generator
from tests.generators.test_train import tiles


def _exact_means(ds) -> np.ndarray:  # noqa: ANN001
    """(2, 3) mean RGB in [0, 1] of background and nucleus pixels over whole tiles."""
    sums, counts = np.zeros((2, 3)), np.zeros(2)
    for s in ds:
        fg = s.instances > 0
        img = s.image.astype(np.float64) / 255
        for k, m in enumerate((~fg, fg)):
            sums[k] += img[m].sum(0)
            counts[k] += m.sum()
    return sums / counts[:, None]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("mask-paint")
    res = train_generator("mask-paint", "tiles", out, profile="smoke", seed=0, progress=False, dataset=tiles())
    return out, res


def test_one_pass_colours_are_the_means_of_the_crops_seen(trained) -> None:  # noqa: ANN001
    out, res = trained
    m = generators.create("mask-paint", image_size=SMOKE.generator.image_size)
    crops = CropDataset(tiles(), SMOKE.generator.image_size, m.train_item)
    loader = StepLoader(crops, SMOKE.generator.batch_size, 0)
    assert res.fit.steps == loader.steps_for_epochs(1)  # one pass by default, not the profile's schedule
    sums, counts = np.zeros((2, 3)), np.zeros(2)
    for step in range(res.fit.steps):
        b = loader.batch(step)
        fg = b["cond"][:, 0].numpy() > 0.5
        img = b["image"].numpy().astype(np.float64).transpose(0, 2, 3, 1)
        for k, mask in enumerate((~fg, fg)):
            sums[k] += img[mask].sum(0)
            counts[k] += mask.sum()
    np.testing.assert_allclose(res.module.colours().numpy(), sums / counts[:, None], rtol=0, atol=1e-9)
    # a random-crop sweep estimates the split's mean colours closely (tiles: nuclei (90, 50, 140),
    # background (230, 170, 200) plus noise)
    exact = _exact_means(tiles())
    assert np.abs(res.module.colours().numpy() - exact).max() < 4 / 255
    np.testing.assert_allclose(exact[1] * 255, (90, 50, 140), atol=2)


def test_generate_paints_the_mask_and_survives_the_checkpoint(trained) -> None:  # noqa: ANN001
    out, res = trained
    run = json.loads((out / "run.json").read_text())
    assert run["generator"] == "mask-paint" and run["status"] == "ok" and run["failure"] == ""
    assert run["deviations"] == []
    loaded = generators.load(out / "checkpoints" / "last.pt", "mask-paint")
    torch.testing.assert_close(loaded.colours(), res.module.colours(), rtol=0, atol=0)
    inst = tiles()[0].instances[:64, :64]
    cond = torch.from_numpy(loaded.condition_map(inst))[None]
    img = loaded.generate(cond)[0].numpy()
    c = loaded.colours().numpy().astype(np.float32)
    fg = inst > 0
    np.testing.assert_array_equal(img[:, fg], np.repeat(c[1][:, None], fg.sum(), 1))
    np.testing.assert_array_equal(img[:, ~fg], np.repeat(c[0][:, None], (~fg).sum(), 1))


def test_untrained_and_one_class_fallbacks() -> None:
    m = generators.create("mask-paint")
    np.testing.assert_array_equal(m.colours().numpy(), np.full((2, 3), 0.5))
    batch = {"cond": torch.zeros(1, 1, 8, 8), "image": torch.full((1, 3, 8, 8), 0.25)}
    m.training_step(batch, 0)  # background only: nuclei painted with the overall mean
    np.testing.assert_allclose(m.colours().numpy(), np.full((2, 3), 0.25))
    with pytest.raises(ValueError, match="binary-mask"):
        generators.create("mask-paint", conditioning="distance-map")
    with pytest.raises(ValueError, match="unknown generator option"):
        generators.create("mask-paint", ngf=3)


def test_quality_and_synthesis_work_with_mask_paint(trained, tmp_path: Path) -> None:  # noqa: ANN001
    from gbench.data.types import Dataset, Sample
    from gbench.pipelines.generator_eval import evaluate_generator
    from gbench.pipelines.synthesis import synthesize

    out, res = trained
    ckpt = out / "checkpoints" / "last.pt"
    t = tiles(2, 80)
    test = Dataset("tiles", "test", list(t.names), lambda n: Sample(n, t[t.names.index(n)].image,
                                                                       t[t.names.index(n)].instances))
    rows = evaluate_generator("mask-paint", ckpt, test, "smoke", progress=False)
    assert len(rows) == 2 * 4 and all(np.isfinite(r["ssim"]) and 0 < r["ssim"] <= 1 for r in rows)
    assert all(r["nrmse"] < 0.3 for r in rows)  # two mean colours are already close to these tiles
    syn = synthesize("mask-paint", ckpt, 3, tmp_path / "S", seed=0, profile="smoke", progress=False)
    assert syn.count == 3
