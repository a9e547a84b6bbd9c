"""Every registered segmentation architecture and the how-to template run through their smoke
path: build from the registry, train a couple of steps on CPU, score the test split. Every profile
has a section for every registered architecture; a registry entry that breaks the contract is a
TypeError at registration."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from gbench import segmentation
from gbench.core.profiles import PROFILES, SMOKE
from gbench.data.resolve import resolve_dataset
from gbench.segmentation import SEGMENTERS, SegmenterEntry
from gbench.segmentation.postprocess import PostprocessConfig
from gbench.segmentation.template import TemplateNet, TemplateNetConfig
from gbench.segmentation.train import SegmentConfig, config_from_profile, evaluate, train_segmenter


def _smoke(config: SegmentConfig, out: Path) -> None:
    train = resolve_dataset("synthetic-he", "train", SMOKE, 0)
    res = train_segmenter(config, [(train, list(range(len(train))))], seed=0, out_dir=out, progress=False)
    assert res.steps_done == 2
    net = segmentation.create(config.arch, **{**config.model_options, "classes": 1})
    assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 64, 64)
    scores = evaluate(res.module, resolve_dataset("synthetic-he", "test", SMOKE, 0), PostprocessConfig())
    assert len(scores["per_image"]) == len(resolve_dataset("synthetic-he", "test", SMOKE, 0))
    assert all(0.0 <= r["pq"] <= 1.0 for r in scores["per_image"])


@pytest.mark.parametrize("arch", segmentation.available())
def test_every_registered_segmenter_trains_and_scores(arch: str, tmp_path: Path) -> None:
    _smoke(config_from_profile(SMOKE, arch, max_steps=2, batch_size=2, val_fraction=0.0), tmp_path)


@pytest.mark.parametrize("arch", segmentation.available())
def test_every_profile_has_a_section_for_every_segmenter(arch: str) -> None:
    for profile in PROFILES.values():
        segmentation.config_for(arch, **profile.segmenter(arch).model_options)  # the options fit the config


def test_the_template_segmenter_registers_and_runs(tmp_path: Path) -> None:
    SEGMENTERS.register("template-test", SegmenterEntry(TemplateNetConfig, TemplateNet, "how-to", label="Template"))
    try:
        assert segmentation.label("template-test") == "Template"
        cfg = SegmentConfig(arch="template-test", model=(("width", 4),), image_size=64, batch_size=2, lr=1e-3,
                            max_steps=2, val_fraction=0.0)
        _smoke(cfg, tmp_path)
    finally:
        SEGMENTERS.unregister("template-test")


def test_registration_checks_the_segmenter_contract() -> None:
    with pytest.raises(TypeError, match="must be a frozen dataclass"):
        SegmenterEntry(dataclasses.make_dataclass("Loose", [("classes", int, 1), ("in_channels", int, 3)]), TemplateNet)
    with pytest.raises(TypeError, match="lacks the field.s. in_channels"):
        SegmenterEntry(dataclasses.make_dataclass("NoIn", [("classes", int, 1)], frozen=True), TemplateNet)
    with pytest.raises(TypeError, match="segmenter 'bad': .* is not a SegmenterEntry"):
        SEGMENTERS.register("bad", TemplateNet)
    assert "bad" not in SEGMENTERS and segmentation.label("unet") == "U-Net"
