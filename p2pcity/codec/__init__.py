"""The one canonical binary encoding of every p2pcity object.

A value is encoded as MessagePack (C speed) with a fixed shape: a dataclass
becomes an array of its fields in declaration order, ``bytes`` a bin, ``str``
a UTF-8 str, ``int`` the smallest integer form, a ``tuple[T, ...]`` an array.
No maps, floats or extension types are ever produced or accepted.

Decoding untrusted bytes is strict: the size is capped before parsing, every
field is checked against its declared type and bounds, and the input must be
exactly the canonical encoding of what it decodes to (we re-encode and
compare), so one object has one byte string and therefore one hash. Every
failure is a :class:`DecodeError` with a message naming the field.

The functions in this module are the reference: the definition of the
encoding and of every error. Hot paths run code generated from the same
declarations (``p2pcity.codec.compiled``), which hands anything it does not
accept back to the reference; ``P2PCITY_CODEC=reference`` in the environment
runs the reference alone (for A/B benchmarks).

Field constraints are declared with ``typing.Annotated``::

    @dataclass(frozen=True, slots=True)
    class Vote:
        view: U64
        block_id: Hash
        signature: Signature
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, get_args, get_origin, get_type_hints

import msgpack

from p2pcity.codec import compiled as codec_compiled

MAX_MESSAGE_SIZE = 8 * 1024 * 1024
U64_MAX = 2**64 - 1

T = TypeVar("T")


class DecodeError(ValueError):
    """Bytes that are not the canonical encoding of the expected object."""


@dataclass(frozen=True, slots=True)
class Len:
    """Exact length in bytes (for ``bytes``)."""

    size: int


@dataclass(frozen=True, slots=True)
class MaxLen:
    """Maximum length: bytes for ``bytes``, characters for ``str``, items for tuples."""

    size: int


@dataclass(frozen=True, slots=True)
class Range:
    """Inclusive integer bounds."""

    low: int
    high: int


U64 = Annotated[int, Range(0, U64_MAX)]
U32 = Annotated[int, Range(0, 2**32 - 1)]
Hash = Annotated[bytes, Len(32)]
PublicKey = Annotated[bytes, Len(32)]
Signature = Annotated[bytes, Len(64)]
Name = Annotated[str, MaxLen(256)]
Text = Annotated[str, MaxLen(4096)]
Blob = Annotated[bytes, MaxLen(1024 * 1024)]

_Decoder = Callable[[Any, str], Any]
_Encoder = Callable[[Any], Any]
DEFAULT_BYTES_MAX = 1024 * 1024
DEFAULT_STR_MAX = 4096
DEFAULT_TUPLE_MAX = 100_000


def _split_annotated(tp: Any) -> tuple[Any, list[Any]]:
    if get_origin(tp) is Annotated:
        base, *meta = get_args(tp)
        return base, list(meta)
    return tp, []


def _meta(meta: list[Any], kind: type) -> Any:
    for item in meta:
        if isinstance(item, kind):
            return item
    return None


def _bytes_decoder(meta: list[Any]) -> _Decoder:
    exact: Len | None = _meta(meta, Len)
    cap: MaxLen | None = _meta(meta, MaxLen)
    limit = cap.size if cap else DEFAULT_BYTES_MAX

    def dec(value: Any, where: str) -> bytes:
        if type(value) is not bytes:
            raise DecodeError(f"{where}: expected bytes, got {type(value).__name__}")
        if exact is not None and len(value) != exact.size:
            raise DecodeError(f"{where}: expected {exact.size} bytes, got {len(value)}")
        if len(value) > limit:
            raise DecodeError(f"{where}: {len(value)} bytes exceeds the limit of {limit}")
        return value

    return dec


def _str_decoder(meta: list[Any]) -> _Decoder:
    cap: MaxLen | None = _meta(meta, MaxLen)
    limit = cap.size if cap else DEFAULT_STR_MAX

    def dec(value: Any, where: str) -> str:
        if type(value) is not str:
            raise DecodeError(f"{where}: expected text, got {type(value).__name__}")
        if len(value) > limit:
            raise DecodeError(f"{where}: {len(value)} characters exceeds the limit of {limit}")
        return value

    return dec


def _int_decoder(meta: list[Any]) -> _Decoder:
    bounds: Range = _meta(meta, Range) or Range(0, U64_MAX)

    def dec(value: Any, where: str) -> int:
        if type(value) is not int:
            raise DecodeError(f"{where}: expected an integer, got {type(value).__name__}")
        if not bounds.low <= value <= bounds.high:
            raise DecodeError(f"{where}: {value} outside [{bounds.low}, {bounds.high}]")
        return value

    return dec


def _bool_decoder(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise DecodeError(f"{where}: expected a boolean, got {type(value).__name__}")
    return value


def _identity(value: Any) -> Any:
    return value


def _build(tp: Any) -> tuple[_Encoder, _Decoder]:
    """Encoder and decoder for one declared type, built once per class."""
    base, meta = _split_annotated(tp)
    origin = get_origin(base)
    if base is bytes:
        return _identity, _bytes_decoder(meta)
    if base is str:
        return _identity, _str_decoder(meta)
    if base is bool:
        return _identity, _bool_decoder
    if base is int:
        return _identity, _int_decoder(meta)
    if origin is tuple:
        args = get_args(base)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"only homogeneous tuple[T, ...] is supported, not {base}")
        item_enc, item_dec = _build(args[0])
        cap: MaxLen | None = _meta(meta, MaxLen)
        limit = cap.size if cap else DEFAULT_TUPLE_MAX

        def enc_tuple(value: Any) -> Any:
            return [item_enc(v) for v in value]

        def dec_tuple(value: Any, where: str) -> tuple[Any, ...]:
            if type(value) is not list:
                raise DecodeError(f"{where}: expected a list, got {type(value).__name__}")
            if len(value) > limit:
                raise DecodeError(f"{where}: {len(value)} items exceeds the limit of {limit}")
            return tuple(item_dec(v, f"{where}[{i}]") for i, v in enumerate(value))

        return enc_tuple, dec_tuple
    if origin in (typing.Union, types.UnionType):
        members = [a for a in get_args(base) if a is not type(None)]
        if len(members) != 1 or len(get_args(base)) != 2:
            raise TypeError(f"only Optional[T] unions are supported, not {base}")
        inner_enc, inner_dec = _build(members[0])

        def enc_opt(value: Any) -> Any:
            return None if value is None else inner_enc(value)

        def dec_opt(value: Any, where: str) -> Any:
            return None if value is None else inner_dec(value, where)

        return enc_opt, dec_opt
    if dataclasses.is_dataclass(base) and isinstance(base, type):
        return _struct_codec(base)
    raise TypeError(f"type {base!r} has no canonical encoding")


_STRUCTS: dict[type, tuple[_Encoder, _Decoder]] = {}


def _struct_codec(cls: type) -> tuple[_Encoder, _Decoder]:
    cached = _STRUCTS.get(cls)
    if cached is not None:
        return cached
    hints = get_type_hints(cls, include_extras=True)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in fields]
    codecs = [_build(hints[f.name]) for f in fields]
    encoders = [c[0] for c in codecs]
    decoders = [c[1] for c in codecs]
    count = len(fields)
    qualname = cls.__name__

    def enc(value: Any) -> list[Any]:
        return [e(getattr(value, n)) for e, n in zip(encoders, names, strict=True)]

    def dec(value: Any, where: str) -> Any:
        if type(value) is not list:
            raise DecodeError(f"{where}: expected a {qualname} record, got {type(value).__name__}")
        if len(value) != count:
            raise DecodeError(f"{where}: a {qualname} has {count} fields, got {len(value)}")
        return cls(*[d(v, f"{where}.{n}") for d, v, n in zip(decoders, value, names, strict=True)])

    _STRUCTS[cls] = (enc, dec)
    return enc, dec


def _compiled_enabled() -> bool:
    return os.environ.get("P2PCITY_CODEC", "compiled") != "reference"


_USE_COMPILED = _compiled_enabled()


def reference_to_wire(value: Any) -> Any:
    """:func:`to_wire` by the reference encoder (the definition the compiled one must match)."""
    return _struct_codec(type(value))[0](value)


def reference_from_wire(cls: type[T], raw: Any, where: str | None = None) -> T:
    """:func:`from_wire` by the reference decoder alone."""
    value: T = _struct_codec(cls)[1](raw, where or cls.__name__)
    return value


def to_wire(value: Any) -> Any:
    """The msgpack-ready structure of a dataclass value (for embedding in larger frames)."""
    if _USE_COMPILED:
        return codec_compiled.compiled(type(value))[0](value)
    return reference_to_wire(value)


def from_wire(cls: type[T], raw: Any, where: str | None = None) -> T:
    """Decode an already-unpacked structure (a field of a larger frame)."""
    if _USE_COMPILED:
        try:
            value: T = codec_compiled.compiled(cls)[1](raw)
            return value
        except codec_compiled.Slow:
            pass  # the reference decoder names the defect
    return reference_from_wire(cls, raw, where)


def encode(value: Any) -> bytes:
    """Canonical bytes of a dataclass value."""
    packed: bytes = msgpack.packb(to_wire(value), use_bin_type=True)
    return packed


def encode_value(value: bytes | str | int | bool | None) -> bytes:
    """Canonical bytes of one scalar field (to splice with :func:`pack_array`)."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def pack_array(items: list[bytes]) -> bytes:
    """The msgpack array of already-encoded items: ``encode`` of a record whose fields are
    those items' values, without encoding them again (a block of encoded transactions)."""
    count = len(items)
    if count < 16:
        head = bytes([0x90 | count])
    elif count < 1 << 16:
        head = b"\xdc" + count.to_bytes(2, "big")
    else:
        head = b"\xdd" + count.to_bytes(4, "big")
    return head + b"".join(items)


def _unpack(data: bytes, max_size: int) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise DecodeError(f"message of {len(data)} bytes exceeds the limit of {max_size}")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_map_len=0,  # we never encode maps: any map is malformed
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.ExtraData) as exc:
        raise DecodeError(f"malformed message: {exc}") from exc
    except RecursionError as exc:
        raise DecodeError("malformed message: nested too deeply") from exc


def _decode_with(from_raw: Callable[[type[T], Any], T], cls: type[T], data: bytes, max_size: int) -> T:
    raw = _unpack(data, max_size)
    value = from_raw(cls, raw)
    # Reject non-minimal encodings (e.g. an int packed in 8 bytes), so that the
    # hash of a message is a function of its content alone. Once the shape is
    # checked, the unpacked structure maps one-to-one onto the canonical
    # bytes, so repacking it (in C) is the same test as re-encoding the value.
    if msgpack.packb(raw, use_bin_type=True) != data:
        raise DecodeError(f"{cls.__name__}: not the canonical encoding")
    return value


def decode(cls: type[T], data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> T:
    """Strictly decode untrusted ``data`` as a ``cls``; any defect raises :class:`DecodeError`."""
    return _decode_with(from_wire, cls, data, max_size)


def reference_decode(cls: type[T], data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> T:
    """:func:`decode` by the reference decoder alone."""
    return _decode_with(reference_from_wire, cls, data, max_size)


def reference_encode(value: Any) -> bytes:
    """:func:`encode` by the reference encoder alone."""
    packed: bytes = msgpack.packb(reference_to_wire(value), use_bin_type=True)
    return packed
