"""The codec's fast path: one generated Python function per dataclass, for encoding and decoding.

The reference codec (``p2pcity.codec``, the package) builds a closure per field and calls
it with the field's path (``Block.txs[12].nonce``) formatted eagerly, so a
transaction costs a dozen calls and string formats to decode. The functions
here are generated once per class from the same ``Annotated`` declarations,
with each field's checks inlined and no path strings: a decoder either
returns exactly what the reference decoder would, or raises :class:`Slow`,
on which the caller runs the reference decoder, which finds the defect and
names it. So the reference stays the one definition of what decodes and of
every error message; this module only has to agree with it on what it
accepts (``tests/test_codec_compiled.py`` compares the two on generated
values of every wire type, with a planted-bug control).

Encoders build the same msgpack-ready lists as the reference encoders (an
attribute read per field, a list per tuple), so the packed bytes are the
same bytes.

Pure: imports nothing of ours but the reference codec's annotation markers.
"""

from __future__ import annotations

import dataclasses
import itertools
import types
import typing
from collections.abc import Callable
from typing import Any, get_args, get_origin, get_type_hints

# The reference codec imports this module; its markers (Len, MaxLen, Range) and default
# limits are read from it when a class is first compiled, by then it is fully initialised.
import p2pcity.codec as _ref


class Slow(Exception):  # noqa: N818 (a signal to take the reference path, not an error)
    """The compiled decoder met a value it does not accept: the reference decoder says why."""


Encoder = Callable[[Any], Any]
FastDecoder = Callable[[Any], Any]


class _Emitter:
    """Source lines of one generated function, with fresh local names and the globals they use."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        # Builtins bound as globals of the generated code: one dict lookup each, not two.
        self.names: dict[str, Any] = {"Slow": Slow, "type": type, "len": len, "tuple": tuple, "list": list}
        self.names.update(bytes=bytes, str=str, int=int, bool=bool)
        self._counter = itertools.count()

    def fresh(self, stem: str) -> str:
        return f"{stem}{next(self._counter)}"

    def constant(self, value: Any) -> str:
        name = self.fresh("_k")
        self.names[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def _is_struct(base: Any) -> bool:
    return dataclasses.is_dataclass(base) and isinstance(base, type)


def _scalar_defect(base: Any, meta: list[Any], var: str) -> str | None:
    """The condition under which the reference rejects scalar ``var``; None if not a scalar."""
    if base is bytes:
        exact = _ref._meta(meta, _ref.Len)
        cap = _ref._meta(meta, _ref.MaxLen)
        limit = cap.size if cap else _ref.DEFAULT_BYTES_MAX
        if exact is None:
            return f"type({var}) is not bytes or len({var}) > {limit}"
        # The reference checks the exact length and then the limit: both must hold.
        return "True" if exact.size > limit else f"type({var}) is not bytes or len({var}) != {exact.size}"
    if base is str:
        cap = _ref._meta(meta, _ref.MaxLen)
        return f"type({var}) is not str or len({var}) > {cap.size if cap else _ref.DEFAULT_STR_MAX}"
    if base is bool:
        return f"type({var}) is not bool"
    if base is int:
        bounds = _ref._meta(meta, _ref.Range)
        low, high = (bounds.low, bounds.high) if bounds else (0, _ref.U64_MAX)
        return f"type({var}) is not int or not {low} <= {var} <= {high}"
    return None


def _check(tp: Any, var: str, out: _Emitter, indent: int) -> bool:
    """Emit checks of ``var`` against ``tp``, rebinding it to the decoded value; False if
    the decoded value is ``var`` itself (nothing was rebound), True if it was rebound."""
    base, meta = _ref._split_annotated(tp)
    origin = get_origin(base)
    defect = _scalar_defect(base, meta, var)
    if defect is not None:
        out.emit(indent, f"if {defect}: raise Slow")
        return False
    if origin is tuple:
        args = get_args(base)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"only homogeneous tuple[T, ...] is supported, not {base}")
        cap = _ref._meta(meta, _ref.MaxLen)
        limit = cap.size if cap else _ref.DEFAULT_TUPLE_MAX
        out.emit(indent, f"if type({var}) is not list or len({var}) > {limit}: raise Slow")
        item = out.fresh("x")
        probe = _Emitter()
        probe._counter = out._counter
        if not _check(args[0], item, probe, indent + 1):
            # Scalar items: check each in place, the tuple holds the very objects.
            out.emit(indent, f"for {item} in {var}:")
            out.lines += probe.lines
            out.names.update(probe.names)
            out.emit(indent, f"{var} = tuple({var})")
        else:
            sub = out.constant(_decoder_of(args[0]))
            out.emit(indent, f"{var} = tuple([{sub}({item}) for {item} in {var}])")
        return True
    if origin in (typing.Union, types.UnionType):
        members = [a for a in get_args(base) if a is not type(None)]
        if len(members) != 1 or len(get_args(base)) != 2:
            raise TypeError(f"only Optional[T] unions are supported, not {base}")
        out.emit(indent, f"if {var} is not None:")
        before = len(out.lines)
        rebound = _check(members[0], var, out, indent + 1)
        if len(out.lines) == before:
            out.emit(indent + 1, "pass")
        return rebound
    if _is_struct(base):
        sub = out.constant(compiled(base)[1])
        out.emit(indent, f"{var} = {sub}({var})")
        return True
    raise TypeError(f"type {base!r} has no canonical encoding")


def _decoder_of(tp: Any) -> FastDecoder:
    """A standalone fast decoder for one declared type (the items of a tuple of records)."""
    base, _ = _ref._split_annotated(tp)
    if _is_struct(base):
        return compiled(base)[1]
    out = _Emitter()
    out.emit(0, "def dec(value):")
    _check(tp, "value", out, 1)
    out.emit(1, "return value")
    decoder: FastDecoder = _define(out, "dec")
    return decoder


def _encode_expr(tp: Any, var: str, out: _Emitter) -> str:
    """An expression that builds the reference encoder's structure for ``var`` of type ``tp``."""
    base, _ = _ref._split_annotated(tp)
    origin = get_origin(base)
    if base in (bytes, str, bool, int):
        return var
    if origin is tuple:
        item = out.fresh("x")
        inner = _encode_expr(get_args(base)[0], item, out)
        return f"list({var})" if inner == item else f"[{inner} for {item} in {var}]"
    if origin in (typing.Union, types.UnionType):
        member = next(a for a in get_args(base) if a is not type(None))
        inner = _encode_expr(member, var, out)
        return var if inner == var else f"(None if {var} is None else {inner})"
    if _is_struct(base):
        return f"{out.constant(compiled(base)[0])}({var})"
    raise TypeError(f"type {base!r} has no canonical encoding")


def _define(out: _Emitter, name: str) -> Any:
    scope: dict[str, Any] = dict(out.names)
    exec("\n".join(out.lines), scope)
    return scope[name]


_COMPILED: dict[type, tuple[Encoder, FastDecoder]] = {}


def compiled(cls: type) -> tuple[Encoder, FastDecoder]:
    """The generated encoder and fast decoder of dataclass ``cls``, built once."""
    done = _COMPILED.get(cls)
    if done is not None:
        return done
    hints = get_type_hints(cls, include_extras=True)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f"f{i}" for i in range(len(fields))]

    enc = _Emitter()
    parts = [_encode_expr(hints[f.name], f"v.{f.name}", enc) for f in fields]
    enc.emit(0, "def enc(v):")
    enc.emit(1, f"return [{', '.join(parts)}]")

    dec = _Emitter()
    dec.names["cls"] = cls
    dec.emit(0, "def dec(value):")
    dec.emit(1, f"if type(value) is not list or len(value) != {len(fields)}: raise Slow")
    if fields:
        dec.emit(1, f"[{', '.join(names)}] = value")
    for f, var in zip(fields, names, strict=True):
        _check(hints[f.name], var, dec, 1)
    dec.emit(1, f"return cls({', '.join(names)})")

    done = (_define(enc, "enc"), _define(dec, "dec"))
    _COMPILED[cls] = done
    return done
