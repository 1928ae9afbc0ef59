"""The canonical codec: round trips, and one clear error for every kind of bad input."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Annotated

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcity.codec import U64, DecodeError, Hash, MaxLen, Name, decode, encode


@dataclass(frozen=True, slots=True)
class Inner:
    digest: Hash
    label: Name


@dataclass(frozen=True, slots=True)
class Outer:
    number: U64
    flag: bool
    data: Annotated[bytes, MaxLen(64)]
    items: Annotated[tuple[Inner, ...], MaxLen(8)]
    maybe: Inner | None


inners = st.builds(Inner, st.binary(min_size=32, max_size=32), st.text(max_size=20))
outers = st.builds(
    Outer,
    st.integers(0, 2**64 - 1),
    st.booleans(),
    st.binary(max_size=64),
    st.lists(inners, max_size=8).map(tuple),
    st.none() | inners,
)


@given(outers)
def test_round_trip_is_identity_and_canonical(value: Outer) -> None:
    data = encode(value)
    assert decode(Outer, data) == value
    assert encode(decode(Outer, data)) == data


@given(outers, st.data())
def test_truncated_input_is_a_decode_error(value: Outer, data: st.DataObject) -> None:
    raw = encode(value)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        decode(Outer, raw[:cut])


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_as_another_exception(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(Outer, raw)


def _packed(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


GOOD = [1, True, b"x", [[b"\0" * 32, "a"]], None]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_packed([1, True, b"x", []]), "has 5 fields"),
        (_packed([-1, True, b"x", [], None]), "outside"),
        (_packed([1, 1, b"x", [], None]), "expected a boolean"),
        (_packed([1, True, "x", [], None]), "expected bytes"),
        (_packed([1, True, b"x" * 65, [], None]), "exceeds the limit"),
        (_packed([1, True, b"x", [[b"\0" * 31, "a"]], None]), "expected 32 bytes"),
        (_packed([1, True, b"x", [[b"\0" * 32, "a"]] * 9, None]), "9 items"),
        (_packed({"a": 1}), "malformed"),
        (_packed(GOOD) + b"\x00", "malformed"),
        (b"\xc1", "malformed"),
    ],
)
def test_each_defect_names_itself(raw: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(Outer, raw)


def test_non_minimal_encoding_is_rejected() -> None:
    # 1 packed as a uint64 instead of a positive fixint: same value, other bytes.
    canonical = _packed(GOOD)
    assert decode(Outer, canonical).number == 1
    padded = canonical[:1] + b"\xcf" + (1).to_bytes(8, "big") + canonical[2:]
    with pytest.raises(DecodeError, match="canonical"):
        decode(Outer, padded)


def test_oversized_message_is_rejected_before_parsing() -> None:
    with pytest.raises(DecodeError, match="exceeds the limit"):
        decode(Outer, b"\x00" * 100, max_size=99)
