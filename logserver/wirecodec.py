"""The codec of the log's JSON wire protocol (logserver/api.py holds the values): each `WireValue` reads itself with
`from_json` (strict: every field present with its one JSON type and encoding, else a `MalformedError` naming the
field), writes itself with `to_json`, and describes itself with `json_schema`, all derived from its type hints:
`int`, `str`, `bool`, `float`, `X | None`, `tuple[X, ...]`, a `Literal`, a nested value, and bytes with an explicit
encoding (`HexHash`, `B64Hash`, `B64Bytes`, `NoteText`). Fields the reader does not know are ignored, so a newer
server's extra field never breaks an older monitor; a missing or mistyped field always does.
"""

import base64
import binascii
import contextlib
import types
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, Self, Union, get_args, get_origin, get_type_hints

from tlogcore.encoding import HASH_SIZE, MAX_INT64, b64encode
from tlogcore.errors import MalformedError


class Encoding(Enum):
    """How a bytes (or bounded int) field is written in JSON."""

    HEX_HASH = "64 lowercase hex digits"
    B64_HASH = "a base64 SHA-256 hash"
    B64 = "base64"
    TEXT = "UTF-8 text"
    UINT = "an integer from 0 to 2^63-1"


HexHash = Annotated[bytes, Encoding.HEX_HASH]
B64Hash = Annotated[bytes, Encoding.B64_HASH]
B64Bytes = Annotated[bytes, Encoding.B64]  # padding bits are not checked: the statement inside is (tlogcore)
NoteText = Annotated[bytes, Encoding.TEXT]  # a signed note or tlog-proof text, carried as a JSON string
Uint = Annotated[int, Encoding.UINT]

Decode = Callable[[object, str], Any]
Encode = Callable[[Any], Any]


@dataclass(frozen=True)
class _Codec:
    decode: Decode
    encode: Encode
    schema: dict[str, Any]


def _want(where: str, what: str) -> MalformedError:
    return MalformedError(f"{where}: want {what}")


def _scalar(kind: type, json_type: str) -> _Codec:
    def decode(value: object, where: str) -> Any:
        # bool is an int in Python; JSON keeps them apart, and so do we
        if type(value) is not kind and not (kind is float and type(value) is int):
            raise _want(where, f"a JSON {json_type}")
        return value

    return _Codec(decode, lambda value: value, {"type": json_type})


def _uint(value: object, where: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_INT64:
        raise _want(where, Encoding.UINT.value)
    return value


def _hex_hash(value: object, where: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * HASH_SIZE or value.strip("0123456789abcdef"):
        raise _want(where, Encoding.HEX_HASH.value)
    return bytes.fromhex(value)


def _b64(value: object, where: str) -> bytes:
    if isinstance(value, str):  # canonical text by one strict binascii call: a submission carries 1,000 (issue 20)
        try:
            return binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):  # the general way below decides what this refuses
            pass
    try:
        if isinstance(value, str):
            return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        pass
    raise _want(where, Encoding.B64.value)


_B64_HASH_LENGTH = 44  # 32 bytes: 43 characters and one '='


def _b64_hash(value: object, where: str) -> bytes:
    # Straight to binascii: a submission's answer carries ~12 proof hashes per entry (the issuer tool reads
    # 20,000 entries' worth), and base64.b64decode's argument handling cost more than the decoding.
    data = b""
    if isinstance(value, str) and len(value) == _B64_HASH_LENGTH:
        with contextlib.suppress(binascii.Error, ValueError):  # ValueError: a non-ASCII character
            data = binascii.a2b_base64(value, strict_mode=True)
    if len(data) != HASH_SIZE or binascii.b2a_base64(data, newline=False).decode("ascii") != value:
        raise _want(where, Encoding.B64_HASH.value)  # one encoding: canonical padding bits too
    return data


def _text(value: object, where: str) -> bytes:
    try:
        if isinstance(value, str):
            return value.encode("utf-8")
    except UnicodeEncodeError:
        pass
    raise _want(where, Encoding.TEXT.value)


_BYTES = {
    Encoding.HEX_HASH: _Codec(_hex_hash, bytes.hex, {"type": "string", "pattern": "^[0-9a-f]{64}$"}),
    Encoding.B64_HASH: _Codec(_b64_hash, b64encode, {"type": "string", "contentEncoding": "base64"}),
    Encoding.B64: _Codec(_b64, b64encode, {"type": "string", "contentEncoding": "base64"}),
    Encoding.TEXT: _Codec(_text, lambda value: value.decode("utf-8"), {"type": "string"}),
}
_UINT = _Codec(_uint, lambda value: value, {"type": "integer", "minimum": 0, "maximum": MAX_INT64})
_SCALARS = {
    int: _scalar(int, "integer"),
    str: _scalar(str, "string"),
    bool: _scalar(bool, "boolean"),
    float: _scalar(float, "number"),
}


def _optional(inner: _Codec) -> _Codec:
    def decode(value: object, where: str) -> Any:
        return None if value is None else inner.decode(value, where)

    def encode(value: Any) -> Any:
        return None if value is None else inner.encode(value)

    return _Codec(decode, encode, {"anyOf": [inner.schema, {"type": "null"}]})


def _sequence(inner: _Codec) -> _Codec:
    def decode(value: object, where: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise _want(where, "a JSON array")
        decode_item = inner.decode
        try:
            return tuple([decode_item(item, where) for item in value])
        except MalformedError:  # name the item: decode again with its index (decoders are pure; errors only)
            for i, item in enumerate(value):
                decode_item(item, f"{where}[{i}]")
            raise

    def encode(value: tuple[Any, ...]) -> list[Any]:
        return [inner.encode(item) for item in value]

    return _Codec(decode, encode, {"type": "array", "items": inner.schema})


def _literal(choices: tuple[str, ...]) -> _Codec:
    def decode(value: object, where: str) -> str:
        if value not in choices or not isinstance(value, str):
            raise _want(where, "one of " + ", ".join(choices))
        return value

    return _Codec(decode, lambda value: value, {"enum": list(choices)})


def _codec(hint: Any) -> _Codec:
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        base, encoding = args[0], args[1]
        return _UINT if encoding is Encoding.UINT and base is int else _BYTES[encoding]
    if origin in (types.UnionType, Union) and len(args) == 2 and type(None) in args:  # Union: `Annotated | None`
        return _optional(_codec(next(a for a in args if a is not type(None))))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _sequence(_codec(args[0]))
    if origin is Literal:
        return _literal(args)
    if isinstance(hint, type) and issubclass(hint, WireValue):
        return hint.codec()
    if hint in _SCALARS:
        return _SCALARS[hint]
    raise TypeError(f"no JSON codec for {hint!r}")


class WireValue:
    """Base of the protocol's values (each a frozen dataclass); the codec is built once per class."""

    _codecs: ClassVar[dict[type, _Codec]] = {}
    # Fields a reader may find absent, taking their default: options added to a request later, so that the
    # requests of older clients still read. Every other field must be present.
    absent_means_default: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def codec(cls) -> _Codec:
        found = WireValue._codecs.get(cls)
        if found is None:
            found = WireValue._codecs[cls] = _object_codec(cls)
        return found

    @classmethod
    def from_json(cls, data: object, where: str = "body") -> Self:
        value: Self = cls.codec().decode(data, where)
        return value

    def to_json(self) -> dict[str, Any]:
        encoded: dict[str, Any] = self.codec().encode(self)
        return encoded

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        return cls.codec().schema


def _object_codec(cls: type[WireValue]) -> _Codec:
    hints = get_type_hints(cls, include_extras=True)
    members = [(f.name, _codec(hints[f.name])) for f in fields(cls)]  # type: ignore[arg-type]
    may_be_absent = cls.absent_means_default

    def decode(value: object, where: str) -> Any:
        if not isinstance(value, dict):
            raise _want(where, "a JSON object")
        prefix = "" if where == "body" else where + "."
        values = {}
        for name, codec in members:
            if name in value:
                values[name] = codec.decode(value[name], prefix + name)
            elif name not in may_be_absent:
                raise MalformedError(f"{prefix}{name}: missing")
        return cls(**values)

    # Fields whose JSON is the Python value itself (int, str, bool) are copied without a call: the write path
    # encodes every entry of a 1000-statement batch.
    plain = {id(c) for c in (*_SCALARS.values(), _UINT)}
    encoders = [(name, None if id(codec) in plain else codec.encode) for name, codec in members]

    def encode(value: Any) -> dict[str, Any]:
        return {name: getattr(value, name) if enc is None else enc(getattr(value, name)) for name, enc in encoders}

    schema = {
        "type": "object",
        "required": [name for name, _ in members if name not in may_be_absent],
        "properties": {name: codec.schema for name, codec in members},
    }
    return _Codec(decode, encode, schema)
