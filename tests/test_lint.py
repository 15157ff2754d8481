"""The code base passes ruff (rules in pyproject.toml, [tool.ruff]) and `inference/` passes mypy --strict."""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO


def test_ruff_finds_nothing():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "bot", "inference", "training", "tests", "bench"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_strict_finds_nothing_in_inference():
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "inference"], cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
