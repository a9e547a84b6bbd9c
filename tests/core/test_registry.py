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
    assert (paper.image_size, paper.batch_size, paper.lr, paper.epochs) == (256, 16, 1e-4, 500)
    assert paper.synthetic_count("S3k") == 3000 and paper.synthetic_count("S10k") == 10000
    assert (paper.migan_size, paper.focus_planes) == (64, 11)
    assert set(PROFILES) == {"smoke", "demo", "paper"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        paper.epochs = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="multiple of 32"):
        dataclasses.replace(paper, image_size=100)
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        get_profile("fast")
    smoke = get_profile("smoke")
    assert smoke.synthetic_count("S3k") < smoke.synthetic_count("S10k") < 100
    assert isinstance(smoke.to_dict()["synthetic_counts"], dict)
    assert all(isinstance(p, Profile) for p in PROFILES.values())


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
