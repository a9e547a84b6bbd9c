"""Every setting a profile resolves to, per component, against the committed
``golden/resolved_profiles.json``.

The golden file was written before the profiles became typed sections (issue 13), from the
tables they replaced (``segmentation.train.ARCH_DEFAULTS`` / ``TRAIN_DEFAULTS``,
``generators.mi_gan.PROFILE_*``, ``generators.mi_gan_train.PROFILE_SCHEDULE`` and the flat
profile fields), so this test proves that no value moved. A deliberate change of a profile
updates the file: ``GBENCH_UPDATE_PROFILES=1 pytest tests/core/test_profiles.py`` (then review
the diff; ``paper`` must keep the papers' settings).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gbench import segmentation
from gbench.core.profiles import PROFILES, Profile, ProfileError
from gbench.generators.mi_gan import config_for_profile
from gbench.generators.mi_gan_train import schedule_for
from gbench.segmentation.train import config_from_profile

GOLDEN = Path(__file__).parent / "golden" / "resolved_profiles.json"


def resolved(p: Profile) -> dict[str, Any]:
    """What each component takes from profile ``p``."""
    g, m = p.generator, p.migan
    s = schedule_for(p)
    return {
        "generator": {"image_size": g.image_size, "batch_size": g.batch_size, "lr": g.lr, "epochs": g.epochs,
                      "max_steps": g.max_steps, "width": g.width},
        "data": {"builtin_size": p.data.builtin_size, "builtin_train": p.data.builtin_train,
                 "builtin_test": p.data.builtin_test},
        "synthesis": {"counts": dict(p.synthesis.counts), "image_size": p.synthesis.image_size,
                      "batch_size": p.synthesis.batch_size},
        "evaluation": {"crop": p.evaluation.crop, "batch_size": p.evaluation.batch_size},
        "segmenters": {a: config_from_profile(p, a).to_dict() for a in ("unet", "segnet")},
        "migan_config": config_for_profile(p).to_dict(),
        "migan_schedule": {**s, "g1_when_no_steps": m.steps_g1 if m.steps_g1 is not None else ["epochs", m.epochs]},
        "migan_counts": {"siha": p.migan_count("siha"), "cancer": p.migan_count("cancer")},
        "run": {"seeds": list(p.seeds), "preview_samples": p.preview_samples},
    }


def test_every_resolved_setting_matches_the_golden_file() -> None:
    now = json.loads(json.dumps({name: resolved(p) for name, p in PROFILES.items()}, sort_keys=True))
    if os.environ.get("GBENCH_UPDATE_PROFILES"):
        GOLDEN.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert set(now) == set(golden)
    for name in golden:
        for component in golden[name]:
            assert now[name][component] == golden[name][component], (name, component)


def test_paper_keeps_the_papers_settings() -> None:
    paper = PROFILES["paper"]
    unet, segnet = config_from_profile(paper, "unet"), config_from_profile(paper, "segnet")
    for cfg in (unet, segnet):  # Sharp-GAN: 256 px crops, batch 16, lr 1e-4, 500 epochs
        assert (cfg.image_size, cfg.batch_size, cfg.lr, cfg.epochs, cfg.max_steps) == (256, 16, 1e-4, 500, None)
    assert unet.model_options == {"encoder": "resnet34"} and segnet.model_options == {"width": 1.0}
    m = config_for_profile(paper)  # MI-GAN: the literal architecture, batch-normalised critics, 64x64, 11 planes
    assert (m.image_size, m.planes, m.upsample, m.g2_arch, m.critic_norm, m.g2_l1) == (64, 11, "transposed", "paper",
                                                                                      "batch", 0.0)
    assert paper.migan.options == () and (paper.migan.train_stacks, paper.migan.cancer_stacks) == (1100, 541)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_registered_segmenter_has_a_section_in_every_profile(name: str) -> None:
    """A new architecture without a profile entry fails here, not silently with another profile's values."""
    prof = PROFILES[name]
    for arch in segmentation.available():
        config_from_profile(prof, arch)
    with pytest.raises(ProfileError, match=f"profile '{name}', segmenter 'nope'"):
        config_from_profile(prof, "nope")
