"""Reading rules outside the image loaders: images one level down in a --real/--fake folder, and
transparency in a focus stack, are refused in one line instead of being silently dropped."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gbench.core.errors import DataError
from gbench.data.multifocus import check_stack
from gbench.pipelines.quality import _image_files


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(path)


def test_images_in_a_sub_folder_are_named(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    _png(tmp_path / "more" / "b.png")
    with pytest.raises(DataError, match="sub-folder") as err:
        _image_files(tmp_path)
    assert "more" in str(err.value)


def test_a_flat_folder_still_reads(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "x.txt").write_text("not an image")
    assert list(_image_files(tmp_path)) == ["a"]


def test_stack_transparency_refused_opaque_alpha_dropped() -> None:
    stack = np.full((3, 4, 4, 4), 200, np.uint8)
    stack[..., 3] = 255
    assert check_stack(stack, None, planes=3).shape == (3, 4, 4, 3)
    stack[1, 0, 0, 3] = 10
    with pytest.raises(ValueError, match="1 transparent pixel"):
        check_stack(stack, None, planes=3)
