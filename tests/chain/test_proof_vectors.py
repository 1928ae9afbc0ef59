"""The published state-proof vectors (docs/state-proofs.md) are current and verify as they say.

Two checks: the JSON file is exactly what the generator makes from the code today (a
change of hashing, codec or envelope shows here and needs a new file and a docs update),
and the light client's verifier reaches each case's verdict, reading only the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from p2pcity.client_light import Trust, VerificationError, verify_envelope
from tests.chain.vectors.make_state_vectors import FORMAT, vectors

FILE = Path(__file__).parent / "vectors" / "state_proofs.json"
DATA: dict[str, Any] = json.loads(FILE.read_text())


def test_the_file_is_what_the_code_makes_today() -> None:
    assert DATA["format"] == FORMAT
    assert vectors() == DATA, "regenerate: python -m tests.chain.vectors.make_state_vectors"


@pytest.mark.parametrize("case", DATA["cases"], ids=[c["name"] for c in DATA["cases"]])
def test_each_vector_reaches_its_verdict(case: dict[str, Any]) -> None:
    trust = Trust(
        DATA["genesis"]["chain_id"],
        bytes.fromhex(DATA["genesis_id"]),
        tuple(bytes.fromhex(v) for v in DATA["validators"]),
    )
    keys = [bytes.fromhex(k) for k in case["keys"]]
    if case["verdict"] == "ok":
        verified = verify_envelope(trust, case["envelope"], keys)
        assert verified.height == case["envelope"]["height"]
    else:
        with pytest.raises(VerificationError, match=case["verdict"]):
            verify_envelope(trust, case["envelope"], keys)
