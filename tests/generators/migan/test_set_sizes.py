"""MI-GAN set sizes: the built-in cancer set is about half the SiHa set (paper: 541 vs 1,100 cells)."""
from __future__ import annotations

import json

import pytest

from gbench.data.synthetic_cells import DEFAULT_COUNTS, PAPER_COUNTS, cell_type_of, synthetic_cells
from gbench.core.profiles import PAPER, PROFILES, get_profile


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_cancer_set_is_about_half_the_siha_set(name: str) -> None:
    prof = get_profile(name)
    ratio = prof.migan_count("cancer") / prof.migan_count("siha")
    assert 0.45 <= ratio <= 0.55, (name, ratio)
    with pytest.raises(ValueError, match="unknown synthetic-cells type"):
        prof.migan_count("hela")


def test_paper_profile_has_the_papers_counts() -> None:
    assert PAPER_COUNTS == {"siha": 1100, "cancer": 541}
    assert PAPER.migan_count("siha") == 1100 and PAPER.migan_count("cancer") == 541
    assert DEFAULT_COUNTS["cancer"]["train"] * 2 == DEFAULT_COUNTS["siha"]["train"]
    assert len(synthetic_cells("cancer", "train")) == DEFAULT_COUNTS["cancer"]["train"]
    assert len(synthetic_cells("siha", "train")) == DEFAULT_COUNTS["siha"]["train"]


def test_cell_type_of() -> None:
    assert cell_type_of("synthetic-cells") == "siha"
    assert cell_type_of("synthetic-cells:siha") == "siha" and cell_type_of("synthetic-cells:cancer") == "cancer"
    with pytest.raises(ValueError):
        cell_type_of("synthetic-cells:hela")
    with pytest.raises(ValueError):
        cell_type_of("cpm15")


@pytest.mark.parametrize("profile", ["smoke", "paper"])
def test_commands_load_the_profile_counts(profile: str) -> None:
    from gbench.pipelines.multifocus import load_stack_set

    prof = get_profile(profile)
    for cell_type in ("siha", "cancer"):
        ds = load_stack_set(f"synthetic-cells:{cell_type}", "train", profile, 0, None)  # lazy: nothing rendered
        assert len(ds) == prof.migan_count(cell_type)


def test_training_uses_the_cancer_count(tmp_path) -> None:  # noqa: ANN001
    from gbench.generators.mi_gan_train import train_migan

    tiny = dict(image_size=16, g1_width=4, d1_width=4, g2_width=4, d2_width=2, critic_norm="layer")
    run = train_migan("synthetic-cells:cancer", tmp_path / "c", profile="smoke", seed=0, steps=1, batch_size=2,
                      progress=False, n_critic=1, augment=False, **tiny)
    record = json.loads((run.out_dir / "run.json").read_text())
    assert record["n_train_stacks"] == get_profile("smoke").migan_count("cancer") == 4
