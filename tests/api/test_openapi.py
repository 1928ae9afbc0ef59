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


def _fuzz(node_url: str, phases: str, max_examples: int, *select: str, timeout_s: int = 10) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            node_url + "/openapi.json",
            "--checks",
            "not_a_server_error",
            "--phases",
            phases,
            "--max-examples",
            str(max_examples),
            *select,
            "--seed",
            "7",
            "--request-timeout",
            str(timeout_s),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout


def test_fuzzing_the_api_never_yields_a_server_error(node_url: str) -> None:
    # CI runs the boundary-value (coverage) phase and a short random phase. The stream is
    # fuzzed on its own below: a valid /events request stays open by design, so each of its
    # cases would otherwise wait out the whole request timeout (that was 30 s of the old 106).
    _fuzz(node_url, "coverage,fuzzing", 5, "--exclude-path", "/events")


def test_fuzzing_the_event_stream_never_yields_a_server_error(node_url: str) -> None:
    # A stream that opens and stays open until the short timeout is a pass: only a 5xx fails.
    _fuzz(node_url, "coverage", 5, "--include-path", "/events", timeout_s=2)


@pytest.mark.soak
def test_fuzzing_every_phase_at_length_never_yields_a_server_error(node_url: str) -> None:
    # The long form: `pytest -m soak tests/api/test_openapi.py` (about 10 min).
    _fuzz(node_url, "examples,coverage,fuzzing,stateful", 100, "--exclude-path", "/events")
