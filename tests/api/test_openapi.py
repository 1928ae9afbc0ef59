"""The HTTP API against its own OpenAPI document: a valid spec, and no 5xx for any input.

A real one-district node process serves the API; schemathesis generates
requests from /openapi.json (coverage, fuzzing and stateful phases) and fails
on any server error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.slow


def test_openapi_document_is_valid(node_url: str) -> None:
    spec = httpx.get(node_url + "/openapi.json", timeout=5).json()
    validate(spec)
    for path in ("/status", "/txs", "/txs/{tx_hash}", "/blocks/{height}", "/metrics"):
        assert path in spec["paths"], path


def test_fuzzing_the_api_never_yields_a_server_error(node_url: str, tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            node_url + "/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "15",
            "--seed",
            "7",
            "--request-timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
