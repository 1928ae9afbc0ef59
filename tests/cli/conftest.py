from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CliRun = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def p2pcity(tmp_path: Path) -> CliRun:
    """Run the real ``p2pcity`` command as a subprocess, as a user would."""

    def run(*args: str, check: bool = False, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        result = subprocess.run(
            [sys.executable, "-m", "p2pcity", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"p2pcity {' '.join(args)} failed: {result.stderr}")
        return result

    return run
