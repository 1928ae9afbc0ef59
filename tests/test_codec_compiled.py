"""The compiled codec agrees with the reference codec on every wire type, byte for byte.

For each dataclass the reference codec can encode (every wire type of the
package), seeded random structures are generated from its declarations:
valid ones at and inside every bound, and one-defect mutations of them (a
wrong type, one byte or item or integer past a bound, a field missing or
extra, a null). The compiled decoder must accept exactly what the reference
accepts, build an equal value, and the compiled encoder must give the same
structure and bytes. Planted-bug controls: a compiled codec generated with
a wrong bound, and a wrong array header in the block's spliced encoding,
are each caught by the same comparison.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import random
import types
import typing
from collections.abc import Iterator
from typing import Any, get_args, get_origin, get_type_hints

import msgpack
import pytest

from p2pcity import codec
from p2pcity.codec import DecodeError, Len, MaxLen, Range
from p2pcity.codec import compiled as codec_compiled
from p2pcity.types.block import Block, BlockHeader, QuorumCert
from p2pcity.types.tx import AccessGrant, RecordPut, Transaction

PURE_PACKAGES = ("types", "chain", "consensus", "mempool", "sharing", "crypto", "store")
PURE_MODULES = ("p2pcity.node.wire", "p2pcity.changes")
VALID_PER_TYPE = 12
MUTANTS_PER_VALID = 40


def _wire_types() -> list[type]:
    names = list(PURE_MODULES)
    for package in PURE_PACKAGES:
        module = importlib.import_module(f"p2pcity.{package}")
        names += [m.name for m in pkgutil.walk_packages(module.__path__, f"p2pcity.{package}.")]
    found: dict[str, type] = {}
    for name in names:
        for value in vars(importlib.import_module(name)).values():
            if dataclasses.is_dataclass(value) and isinstance(value, type) and value.__module__ == name:
                try:
                    codec._struct_codec(value)
                except TypeError:
                    continue  # not a wire type (a config, a result record)
                found[f"{name}.{value.__qualname__}"] = value
    return [found[k] for k in sorted(found)]


WIRE_TYPES = _wire_types()


def _split(tp: Any) -> tuple[Any, list[Any]]:
    return codec._split_annotated(tp)


def _meta(meta: list[Any], kind: type) -> Any:
    return next((m for m in meta if isinstance(m, kind)), None)


def _fields(cls: type) -> list[tuple[str, Any]]:
    hints = get_type_hints(cls, include_extras=True)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.init]


def _size(rng: random.Random, limit: int) -> int:
    return rng.choice(
        [0, 1, min(limit, 7), min(limit, rng.randrange(1, 40))] + ([limit] if limit <= 4096 else [])
    )


def valid_raw(tp: Any, rng: random.Random, depth: int = 0) -> Any:
    """A structure the reference decoder accepts for ``tp`` (bounds hit often)."""
    base, meta = _split(tp)
    origin = get_origin(base)
    if base is bytes:
        exact = _meta(meta, Len)
        cap = _meta(meta, MaxLen)
        return rng.randbytes(
            exact.size if exact else _size(rng, cap.size if cap else codec.DEFAULT_BYTES_MAX)
        )
    if base is str:
        cap = _meta(meta, MaxLen)
        n = _size(rng, cap.size if cap else codec.DEFAULT_STR_MAX)
        return "".join(rng.choice("az-/.\u00e9\u4e2d\U0001f600") for _ in range(n))
    if base is bool:
        return rng.random() < 0.5
    if base is int:
        bounds = _meta(meta, Range) or Range(0, codec.U64_MAX)
        return rng.choice([bounds.low, bounds.high, rng.randint(bounds.low, bounds.high)])
    if origin is tuple:
        cap = _meta(meta, MaxLen)
        limit = cap.size if cap else codec.DEFAULT_TUPLE_MAX
        n = rng.choice([0, 1, 2] + ([limit] if limit <= 8 else [])) if depth < 3 else 0
        return [valid_raw(get_args(base)[0], rng, depth + 1) for _ in range(n)]
    if origin in (typing.Union, types.UnionType):
        inner = next(a for a in get_args(base) if a is not type(None))
        return None if rng.random() < 0.3 else valid_raw(inner, rng, depth)
    return [valid_raw(t, rng, depth + 1) for _, t in _fields(base)]


def _wrong(tp: Any, value: Any, rng: random.Random) -> Iterator[Any]:
    """Replacements of one value that break ``tp`` (or, for some, only maybe)."""
    base, meta = _split(tp)
    yield from rng.sample([None, 1.5, True, 7, -1, b"x", "x", [], [b"x"]], 2)
    if base is bytes:
        exact, cap = _meta(meta, Len), _meta(meta, MaxLen)
        limit = exact.size if exact else cap.size if cap else codec.DEFAULT_BYTES_MAX
        yield bytes(limit + 1)
        if exact:
            yield bytes(exact.size - 1)
        yield bytearray(value) if isinstance(value, bytes) else b""
    elif base is str:
        cap = _meta(meta, MaxLen)
        yield "a" * ((cap.size if cap else codec.DEFAULT_STR_MAX) + 1)
    elif base is int:
        bounds = _meta(meta, Range) or Range(0, codec.U64_MAX)
        yield from (bounds.low - 1, bounds.high + 1, 2**64, False)
    elif get_origin(base) is tuple:
        cap = _meta(meta, MaxLen)
        limit = cap.size if cap else codec.DEFAULT_TUPLE_MAX
        if limit <= 64 and isinstance(value, list):
            yield [*value, *([value[0]] if value else [None])] * (limit + 1)
        yield tuple(value) if isinstance(value, list) else ()
    elif dataclasses.is_dataclass(base) and isinstance(value, list):
        yield value[:-1]
        yield [*value, 0]


def mutants(tp: Any, raw: Any, rng: random.Random) -> Iterator[Any]:
    """``raw`` with one value somewhere inside (at every depth) replaced by one that breaks it."""
    for wrong in _wrong(tp, raw, rng):
        yield wrong
    base, _ = _split(tp)
    origin = get_origin(base)
    if origin in (typing.Union, types.UnionType) and raw is not None:
        yield from mutants(next(a for a in get_args(base) if a is not type(None)), raw, rng)
    elif isinstance(raw, list) and (origin is tuple or dataclasses.is_dataclass(base)):
        declared = [get_args(base)[0]] * len(raw) if origin is tuple else [t for _, t in _fields(base)]
        for i, item_type in enumerate(declared):
            for wrong in mutants(item_type, raw[i], rng):
                yield [*raw[:i], wrong, *raw[i + 1 :]]


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as exc:
        return type(exc).__name__, str(exc)


def disagreements(cls: type, seed: int) -> list[str]:
    """Every input on which the compiled codec and the reference differ (empty: they agree)."""
    rng = random.Random(f"{cls.__qualname__}/{seed}")
    encoder, fast_decoder = codec_compiled.compiled(cls)
    found = []
    for _ in range(VALID_PER_TYPE):
        good = valid_raw(cls, rng)
        bad = list(mutants(cls, good, rng))
        for raw in [good, *rng.sample(bad, min(len(bad), MUTANTS_PER_VALID))]:
            ref = _outcome(codec.reference_from_wire, cls, raw)
            fast = _outcome(fast_decoder, raw)
            if (ref[0] == "ok") != (fast[0] == "ok") or (ref[0] == "ok" and ref[1] != fast[1]):
                found.append(
                    f"{cls.__name__} decode of {raw!r:.200}: reference {ref!r:.200}, compiled {fast!r:.200}"
                )
                continue
            if ref[0] != "ok":
                # Through the public entry point the error is the reference's own.
                assert _outcome(codec.from_wire, cls, raw) == ref
                continue
            value = ref[1]
            if encoder(value) != codec.reference_to_wire(value):
                found.append(f"{cls.__name__} encode of {value!r:.200} differs")
            elif codec.encode(value) != codec.reference_encode(value):
                found.append(f"{cls.__name__} bytes of {value!r:.200} differ")
            data = msgpack.packb(raw, use_bin_type=True)
            if _outcome(codec.decode, cls, data) != _outcome(codec.reference_decode, cls, data):
                found.append(f"{cls.__name__} decode of bytes {data.hex():.200} differs")
    return found


def test_the_wire_types_are_all_found() -> None:
    names = {cls.__name__ for cls in WIRE_TYPES}
    assert {"Transaction", "Block", "BlockHeader", "QuorumCert", "Vote", "TimeoutCert"} <= names
    assert {"CompactProposal", "TxResponse", "Batch", "RecordPut", "AccessGrant", "SafetyState"} <= names


@pytest.mark.parametrize("cls", WIRE_TYPES, ids=lambda c: c.__qualname__)
def test_compiled_codec_agrees_with_the_reference(cls: type) -> None:
    assert disagreements(cls, seed=0) == []


def test_planted_wrong_bound_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: a compiled decoder that accepts one more byte than a hash has must be caught."""
    honest_emit = codec_compiled._Emitter.emit

    def off_by_one(self: codec_compiled._Emitter, indent: int, line: str) -> None:
        honest_emit(self, indent, line.replace("!= 32: raise", "> 33: raise"))

    monkeypatch.setattr(codec_compiled._Emitter, "emit", off_by_one)
    monkeypatch.setattr(codec_compiled, "_COMPILED", {})

    for cls in (Transaction, RecordPut, QuorumCert, BlockHeader):
        assert disagreements(cls, seed=0), f"the planted bug went unseen in {cls.__name__}"


def test_planted_wrong_range_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: a compiled decoder that reads a U32 field as a U64 must be caught."""
    monkeypatch.setattr(codec_compiled._ref, "Range", type("NotRange", (), {}))
    monkeypatch.setattr(codec_compiled, "_COMPILED", {})

    assert disagreements(AccessGrant, seed=0)


# --- the block's spliced encoding ---------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 15, 16, 17, 255, 65535, 65536, 65537])
def test_pack_array_is_the_msgpack_array(count: int) -> None:
    items = [msgpack.packb(i % 300, use_bin_type=True) for i in range(count)]
    assert codec.pack_array(items) == msgpack.packb([i % 300 for i in range(count)], use_bin_type=True)


def _blocks(seed: int) -> list[Any]:

    rng = random.Random(seed)
    out = []
    for _ in range(40):
        raw = valid_raw(Block, rng)
        count = rng.choice([0, 1, 15, 16, 17, 40])
        raw[1] = [valid_raw(Transaction, rng) for _ in range(count)]
        out.append(codec.reference_from_wire(Block, raw))
    return out


def block_disagreements(seed: int) -> list[str]:
    found = []
    for block in _blocks(seed):
        reference = codec.reference_encode(block)
        if block.encoded != reference:
            found.append(f"block of {len(block.txs)} transactions: spliced bytes differ")
        type(block).decode(reference)  # and they decode back
    return found


def test_block_splices_the_reference_bytes() -> None:
    assert block_disagreements(seed=1) == []


def test_planted_wrong_array_header_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: a splice that writes a fixarray header for 16 items must be caught."""
    honest = codec.pack_array

    def wrong(items: list[bytes]) -> bytes:
        return bytes([0x90 | len(items)]) + b"".join(items) if len(items) == 16 else honest(items)

    monkeypatch.setattr("p2pcity.types.block.pack_array", wrong)
    assert block_disagreements(seed=1)


def test_decode_error_is_the_reference_message() -> None:

    raw = [codec.reference_to_wire(Transaction("c", bytes(32), 1, "record.put", b"", bytes(64)))]
    raw[0][2] = -5
    with pytest.raises(DecodeError, match=r"Transaction\.nonce: -5 outside"):
        codec.decode(Transaction, msgpack.packb(raw[0], use_bin_type=True))
