"""The code stays ruff-clean (the rules are in pyproject.toml)."""

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _ruff():
    here = pathlib.Path(sys.executable).parent / "ruff"
    return str(here) if here.exists() else shutil.which("ruff")


@pytest.mark.skipif(_ruff() is None, reason="ruff is not installed (pip install -e '.[test]')")
def test_ruff_finds_nothing():
    out = subprocess.run(
        [_ruff(), "check", "cascata", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
