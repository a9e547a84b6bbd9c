from __future__ import annotations

import dataclasses

import pytest

from gbench.core import Registry
from gbench.core.profiles import PROFILES, Profile, get_profile


def test_registry_register_get_and_errors() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("alpha", 1)

    @reg.register("beta-two")
    def beta() -> int:
        return 2

    assert reg.get("alpha") == 1 and reg.get("beta-two")() == 2
    assert reg.names() == ["alpha", "beta-two"] and "alpha" in reg and len(reg) == 2
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha", 3)
    with pytest.raises(KeyError, match="did you mean alpha"):
        reg.get("alpah")
    with pytest.raises(ValueError, match="kebab-case"):
        reg.register("Bad Name", 4)


def test_profiles_paper_settings_and_validation() -> None:
    paper = get_profile("paper")
    g = paper.generator
    assert (g.image_size, g.batch_size, g.lr, g.epochs, g.max_steps, g.width) == (256, 16, 1e-4, 500, None, 64)
    assert paper.synthetic_count("S3k") == 3000 and paper.synthetic_count("S10k") == 10000
    assert (paper.migan.image_size, paper.migan.planes) == (64, 11)
    assert set(PROFILES) == {"smoke", "demo", "paper"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        paper.generator.epochs = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="profile 'paper', generator: image_size must be a positive multiple of 32"):
        dataclasses.replace(paper, generator=dataclasses.replace(g, image_size=100))
    with pytest.raises(ValueError, match="profile 'paper', migan: planes must be odd"):
        dataclasses.replace(paper, migan=dataclasses.replace(paper.migan, planes=10))
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        get_profile("fast")
    smoke = get_profile("smoke")
    assert smoke.synthetic_count("S3k") < smoke.synthetic_count("S10k") < 100
    d = smoke.to_dict()
    assert isinstance(d["synthesis"]["counts"], dict) and d["segmenters"]["unet"]["model"] == {"encoder": "resnet18"}
    assert all(isinstance(p, Profile) for p in PROFILES.values())


def test_a_missing_profile_entry_is_an_error_naming_profile_and_component() -> None:
    from gbench.core.profiles import ProfileError, as_profile

    smoke = get_profile("smoke")
    with pytest.raises(ProfileError, match=r"profile 'smoke', segmenter 'hovernet': no section for this architecture "
                                           r"\(has: unet, segnet\)"):
        smoke.segmenter("hovernet")
    with pytest.raises(ProfileError, match="profile 'smoke', synthesis: no synthetic set 'S50k'"):
        smoke.synthetic_count("S50k")
    assert as_profile("smoke") is smoke and as_profile(smoke) is smoke
    with pytest.raises(ValueError, match="unknown profile"):
        as_profile("fast")


class _Base:
    @classmethod
    def check_contract(cls, sub: type) -> None:
        if not hasattr(sub, "run"):
            raise TypeError(f"{sub.__name__} does not implement run")


class _Good(_Base):
    def run(self) -> None: ...


class _Lazy(_Base):
    pass


def _make_good() -> _Good:
    return _Good()


def _untyped():  # noqa: ANN202  (no return annotation: no contract can be read)
    return _Good()


def test_registry_checks_its_contract_at_registration() -> None:
    reg: Registry[object] = Registry("widget", base=_Base)
    reg.register("good", _Good)
    reg.register("factory", _make_good)
    reg.register("instance", _Good())
    with pytest.raises(TypeError, match="widget 'lazy': _Lazy does not implement run"):
        reg.register("lazy", _Lazy)
    with pytest.raises(TypeError, match="widget 'other': .* is not a _Base class"):
        reg.register("other", int)
    with pytest.raises(TypeError, match="widget 'untyped': .* is not a _Base factory"):
        reg.register("untyped", _untyped)
    assert reg.names() == ["factory", "good", "instance"]
    reg.unregister("good")
    assert "good" not in reg
    with pytest.raises(KeyError, match="unknown widget"):
        reg.unregister("good")
