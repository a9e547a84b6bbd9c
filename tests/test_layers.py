"""The house's layers: the import-linter contract in pyproject.toml holds, and it catches a
wrong-way import (a planted one, at module level and inside a function)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("gbench", "generators", "segmentation", "reports")
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (make test installs it)")


def _copy_tree(dst: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, dst / pkg, symlinks=True,  # gbench/generators etc. stay links
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", dst / "pyproject.toml")
    return dst


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_contract_is_kept() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted"),
    [
        # the library reaching up into the application layer, at module level
        ("gbench/core/errors.py", "from gbench.pipelines import runner as _runner  # planted\n"),
        # a library package reaching up from inside a function (hidden imports count too)
        ("segmentation/postprocess.py", "def _planted():\n    from gbench.cli import app\n    return app\n"),
        # metrics below engine must not import it
        ("gbench/metrics/stain.py", "import gbench.engine as _engine  # planted\n"),
    ],
)
def test_planted_wrong_way_import_fails(tmp_path: Path, module: str, planted: str) -> None:
    root = _copy_tree(tmp_path)
    target = root / module
    target.write_text(target.read_text(encoding="utf-8") + "\n" + planted, encoding="utf-8")
    result = _lint(root)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    imported = planted.split("from ")[-1].split(" import")[0] if "from " in planted else "gbench.engine"
    assert imported in result.stdout
