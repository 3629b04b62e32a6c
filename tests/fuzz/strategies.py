"""Hypothesis strategies: arbitrary valid objects, and mutations of valid encodings.

The mutators aim at the ways a lenient parser goes wrong (STYLE.md §3): case
changes, extra whitespace, CRLF, base64 re-padding, leading zeros, '+' signs
and underscores in numbers, non-ASCII look-alikes (fullwidth and superscript
digits, NBSP, em dash), as well as plain byte flips, insertions and deletions.
"""

import re
import unicodedata
from collections.abc import Callable

from hypothesis import strategies as st

from tlogcore.checkpoint import Checkpoint
from tlogcore.keys import Ed25519Verifier
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, REVOKE, Statement
from tlogcore.tiles import ENTRIES_LEVEL, MAX_LEVEL, TILE_WIDTH, Tile

# --- valid objects -----------------------------------------------------------------

key_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp", "Co", "Cn")).filter(
        lambda c: c != "+" and not c.isspace() and c.isprintable()
    ),
    min_size=1,
    max_size=40,
)
hashes = st.binary(min_size=32, max_size=32)
sizes = st.integers(min_value=0, max_value=2**63 - 1)
line_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=60)


@st.composite
def checkpoints(draw: st.DrawFn) -> Checkpoint:
    return Checkpoint(draw(line_text), draw(sizes), draw(hashes), tuple(draw(st.lists(line_text, max_size=3))))


@st.composite
def ed25519_verifiers(draw: st.DrawFn) -> Ed25519Verifier:
    return Ed25519Verifier(draw(key_names.filter(lambda n: len(n.encode()) <= 255)), draw(hashes))


# Statement text values: NFC, no edge whitespace, no control characters (statement.py).
text_values = (
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40)
    .map(lambda s: unicodedata.normalize("NFC", s).strip())
    .filter(lambda s: 1 <= len(s.encode()) <= 255 and s == unicodedata.normalize("NFC", s))
)


@st.composite
def statements(draw: st.DrawFn, signer_vkey: str) -> Statement:
    """A valid statement for `signer_vkey` (the test signs it with that key's signer)."""
    kind = draw(st.sampled_from([ISSUE, REVOKE, ISSUER_ADD, ISSUER_RETIRE]))
    document = draw(hashes) if kind in (ISSUE, REVOKE) else None
    issuer = draw(ed25519_verifiers()).vkey if kind in (ISSUER_ADD, ISSUER_RETIRE) else None
    reason = draw(st.none() | text_values) if kind in (REVOKE, ISSUER_RETIRE) else None
    return Statement(
        origin=draw(key_names),
        kind=kind,
        signer=signer_vkey,
        time=draw(st.integers(min_value=1, max_value=2**63 - 1)),
        document=document,
        issuer=issuer,
        ref=draw(st.none() | text_values),
        reason=reason,
    )


@st.composite
def tiles(draw: st.DrawFn) -> Tile:
    level = draw(st.sampled_from([ENTRIES_LEVEL, 0, 1, 2, MAX_LEVEL]) | st.integers(0, MAX_LEVEL))
    index = draw(st.integers(0, 999) | st.integers(0, 2**63 - 1))
    width = draw(st.just(TILE_WIDTH) | st.integers(1, TILE_WIDTH))
    return Tile(level, index, width)


# --- mutations of valid encodings ------------------------------------------------------

_INSERTS = [
    b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x00", b"\x7f", b"=", b"+", b"-", b"_", b"0", b"#",
    "\u00a0".encode(), "\u2014".encode(), "\u2014 ".encode(), "\uff11".encode(), "\u00b2".encode(),
    "\u0661".encode(), "\u1780".encode(), "e\u0301".encode(), b"\xff", b"\xc3", "\ufeff".encode(),
]  # fmt: skip

_DIGITS = re.compile(rb"[0-9]+")
_BASE64_TAIL = re.compile(rb"[A-Za-z0-9+/]{4,}={0,2}")
_LETTERS = re.compile(rb"[A-Za-z]+")


def _at(data: bytes, fraction: float) -> int:
    return min(len(data), int(fraction * (len(data) + 1)))


def _pick(pattern: re.Pattern[bytes], data: bytes, fraction: float) -> re.Match[bytes] | None:
    found = list(pattern.finditer(data))
    return found[min(len(found) - 1, int(fraction * len(found)))] if found else None


def _flip(data: bytes, f: float, payload: bytes) -> bytes:
    if not data:
        return data
    i = min(len(data) - 1, _at(data, f))
    return data[:i] + bytes([data[i] ^ (1 << (payload[0] % 8 if payload else 0))]) + data[i + 1 :]


def _insert(data: bytes, f: float, payload: bytes) -> bytes:
    i = _at(data, f)
    return data[:i] + payload + data[i:]


def _insert_special(data: bytes, f: float, payload: bytes) -> bytes:
    return _insert(data, f, _INSERTS[payload[0] % len(_INSERTS)] if payload else b" ")


def _delete(data: bytes, f: float, payload: bytes) -> bytes:
    i = _at(data, f)
    return data[:i] + data[i + 1 + (payload[0] % 4 if payload else 0) :]


def _duplicate(data: bytes, f: float, payload: bytes) -> bytes:
    i = _at(data, f)
    return data[:i] + data[i : i + 1 + len(payload) * 8] + data[i:]


def _swap_case(data: bytes, f: float, payload: bytes) -> bytes:
    m = _pick(_LETTERS, data, f)
    return data[: m.start()] + m.group().swapcase() + data[m.end() :] if m else data


def _crlf(data: bytes, f: float, payload: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n", 1 + (payload[0] % 3 if payload else 0))


def _number(data: bytes, f: float, payload: bytes) -> bytes:
    """Leading zero, sign, underscore, look-alike digits, or a boundary value in place of a decimal."""
    m = _pick(_DIGITS, data, f)
    if not m:
        return data
    digits = m.group()
    forms = [
        b"0" + digits, b"+" + digits, b"-" + digits, digits[:1] + b"_" + digits[1:], b" " + digits,
        digits + b" ", "\uff10".encode() + digits, digits + "\u00b2".encode(), b"9223372036854775807",
        b"9223372036854775808", b"18446744073709551615", b"18446744073709551616", b"1e3", b"0x10", b"",
        b"1" + b"0" * 400, b"nan", b"inf", b"-inf",
    ]  # fmt: skip
    return data[: m.start()] + forms[(payload[0] if payload else 0) % len(forms)] + data[m.end() :]


def _repad(data: bytes, f: float, payload: bytes) -> bytes:
    """Re-pad a base64 run: drop or add '=', or change the last character (non-zero padding bits)."""
    m = _pick(_BASE64_TAIL, data, f)
    if not m:
        return data
    run = m.group()
    choice = (payload[0] if payload else 0) % 4
    if choice == 0:
        run = run.rstrip(b"=")
    elif choice == 1:
        run += b"="
    elif choice == 2:
        run = run.rstrip(b"=")[:-1] + bytes([run.rstrip(b"=")[-1] ^ 1]) + run[len(run.rstrip(b"=")) :]
    else:
        run = run.replace(b"+", b"-").replace(b"/", b"_")  # URL-safe alphabet
    return data[: m.start()] + run + data[m.end() :]


def _truncate(data: bytes, f: float, payload: bytes) -> bytes:
    return data[: _at(data, f)]


MUTATORS: list[Callable[[bytes, float, bytes], bytes]] = [
    _flip, _insert, _insert_special, _delete, _duplicate, _swap_case, _crlf, _number, _repad, _truncate,
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, samples: list[bytes]) -> bytes:
    """A valid sample with one to four targeted mutations."""
    data = draw(st.sampled_from(samples))
    for _ in range(draw(st.integers(1, 4))):
        mutate = draw(st.sampled_from(MUTATORS))
        data = mutate(data, draw(st.floats(0, 1)), draw(st.binary(min_size=1, max_size=4)))
    return data


def inputs(samples: list[bytes]) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, arbitrary text, and mutations of valid samples (mostly the latter)."""
    return st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
        mutated(samples),
        mutated(samples),
        mutated(samples),
    )
