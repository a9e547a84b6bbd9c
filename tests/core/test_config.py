"""Experiment files (gbench.core.config) and user profiles (gbench.core.profiles.load_profile)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from gbench.core.config import OptionSpec, load_experiment
from gbench.core.errors import DataError
from gbench.core.profiles import SMOKE, get_profile, load_profile

OPTIONS = [OptionSpec("data", "data", "str"), OptionSpec("train", "train", "list"),
           OptionSpec("max-steps", "max_steps", "int"), OptionSpec("width", "width", "float"),
           OptionSpec("resume", "resume", "bool"), OptionSpec("seeds", "seeds", "str"),
           OptionSpec("synthetic", "synthetic", "list")]


def _write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_values_in_the_commands_types(tmp_path: Path) -> None:
    path = _write(tmp_path, """
data = "cpm15"
train = ["R", "R+mine"]
max-steps = 20
width = 1              # an integer where a float is asked: fine
resume = true
seeds = [0, 1, 2]      # the comma-separated form
[synthetic]
mine = "runs/mine"
""")
    cfg = load_experiment(path, OPTIONS, "segment")
    assert cfg.as_dict() == {"data": "cpm15", "train": ["R", "R+mine"], "max_steps": 20, "width": 1.0,
                             "resume": True, "seeds": "0,1,2", "synthetic": ["mine=runs/mine"]}
    assert isinstance(cfg.as_dict()["width"], float)
    assert load_experiment(_write(tmp_path, 'train = "R+S3k"'), OPTIONS, "segment").as_dict() == {"train": ["R+S3k"]}


@pytest.mark.parametrize("text,match", [
    ("max_steps = 3", r"exp.toml: unknown key 'max_steps' for gbench segment \(did you mean 'max-steps'\?\)"),
    ("max-steps = 2.5", r"exp.toml: key 'max-steps': expected an integer, got a float"),
    ("max-steps = true", r"key 'max-steps': expected an integer, got a boolean"),
    ("width = 'wide'", r"key 'width': expected a number, got a string"),
    ("resume = 'yes'", r"key 'resume': expected a boolean"),
    ("data = ['a', ['b']]", r"key 'data': expected a string or an array of scalars"),
    ("data = {x = 1}", r"key 'data': expected a string, got a table"),
    ("train = [1]", r"key 'train': expected a string or an array of strings"),
    ("[synthetic]\nmine = 3", r"key synthetic.mine: expected a string, got an integer"),
    ("data = ", r"exp.toml: not valid TOML"),
])
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DataError, match=match) as err:
        load_experiment(_write(tmp_path, text + "\n"), OPTIONS, "segment")
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.toml: no such file"):
        load_experiment(tmp_path / "nope.toml", OPTIONS, "segment")


def test_config_module_imports_no_torch() -> None:
    code = "import sys, gbench.core.config, gbench.core.profiles; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---------------------------------------------------------------------------------------- profiles


def test_user_profile_overrides_fields_and_keeps_the_rest(tmp_path: Path) -> None:
    path = _write(tmp_path, """
extends = "smoke"
seeds = [0, 1]
[segmenters.unet]
max_steps = 20
val_every = "none"
model = { encoder = "resnet34", decoder_channels = [8, 4] }
[synthesis]
counts = { S3k = 10 }
[runtime]
amp = "off"
""", "longer.toml")
    prof = get_profile(str(path))  # what every command's --profile does
    assert prof.name == "longer" and prof.seeds == (0, 1)
    unet = prof.segmenter("unet")
    assert unet.max_steps == 20 and unet.val_every is None
    assert unet.model_options == {"encoder": "resnet34", "decoder_channels": (8, 4)}
    assert dict(prof.synthesis.counts) == {"S3k": 10, "S10k": 12}  # merged key by key
    assert prof.runtime.amp == "off"
    # everything else is smoke's
    assert prof.segmenter("segnet") == SMOKE.segmenter("segnet") and prof.generator == SMOKE.generator
    assert prof.data == SMOKE.data and prof.migan == SMOKE.migan
    assert dataclasses.replace(prof, name="smoke", seeds=SMOKE.seeds, segmenters=SMOKE.segmenters,
                               synthesis=SMOKE.synthesis, runtime=SMOKE.runtime) == SMOKE


def test_user_profile_adds_an_architecture_section_only_whole(tmp_path: Path) -> None:
    fields = ('model = { width = 0.5 }\nimage_size = 64\nbatch_size = 2\nlr = 0.001\nepochs = 1\nmax_steps = 2\n'
              'val_every = "none"\npatience = 0\n')
    prof = load_profile(_write(tmp_path, f'extends = "smoke"\n[segmenters.mynet]\n{fields}', "p.toml"))
    assert prof.segmenter("mynet").max_steps == 2
    with pytest.raises(DataError, match=r"\[segmenters.mynet\] is a new section: it needs every field; missing .*lr"):
        load_profile(_write(tmp_path, 'extends = "smoke"\n[segmenters.mynet]\nmax_steps = 2\n', "q.toml"))


@pytest.mark.parametrize("text,match", [
    ("seeds = [0]", r"bad.toml: key 'extends' is missing"),
    ('extends = "tiny"', r"bad.toml: key 'extends': unknown profile 'tiny' \(built-in: smoke, demo, paper\)"),
    ('extends = "smoke"\nname = "demo"', r"key 'name': 'demo' is a built-in profile's name"),
    ('extends = "smoke"\n[segmenters.unet]\nmaxsteps = 3',
     r"bad.toml: unknown key 'maxsteps' for \[segmenters.unet\] \(did you mean 'max_steps'\?\)"),
    ('extends = "smoke"\n[generatr]\nlr = 1.0', r"unknown key 'generatr' for a profile \(did you mean 'generator'\?\)"),
    ('extends = "smoke"\n[generator]\nlr = "fast"', r"key 'generator.lr': expected a number, got a string"),
    ('extends = "smoke"\n[generator]\nmax_steps = 2.5', r"key 'generator.max_steps': expected int or \"none\""),
    ('extends = "smoke"\n[synthesis]\ncounts = { S3k = "many" }', r"key 'synthesis.counts.S3k': expected an integer"),
    ('extends = "smoke"\nseeds = [0, "1"]', r"key 'seeds': expected an array of integers"),
    ('extends = "smoke"\n[generator]\nlr = -1', r"bad.toml: profile 'bad', generator: lr must be positive"),
    ('extends = "smoke"\n[runtime]\namp = "fp8"', r"bad.toml: .*amp"),
])
def test_bad_user_profiles_name_the_file_and_the_key(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DataError, match=match) as err:
        load_profile(_write(tmp_path, text + "\n", "bad.toml"))
    assert "\n" not in str(err.value)


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown profile 'tiny' \(known: smoke, demo, paper, or a .toml file"):
        get_profile("tiny")
