"""The statement parser's fast paths (issue 20: parsing was a quarter of a signature worker's time) decide exactly
as the plain definitions they replace, kept here as the slow, obviously-correct reference (STYLE.md §13)."""

import random
import sys
import unicodedata

import pytest

from tlogcore import statement as statements
from tlogcore.encoding import parse_hash_hex
from tlogcore.errors import MalformedError
from tlogcore.keys import is_valid_key_name

ASCII = [chr(c) for c in range(128)]
SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]


def reference_has_control(value: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in value)


def reference_is_nfc(value: str) -> bool:
    return unicodedata.normalize("NFC", value) == value


def reference_is_origin(origin: str) -> bool:
    return bool(origin) and not any(c.isspace() for c in origin) and "+" not in origin


def reference_hash_hex_ok(text: str) -> bool:
    return len(text) == 64 and not any(c not in "0123456789abcdef" for c in text)


def samples(seed: int, alphabet: list[str], count: int = 3000) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(count)
    ] + alphabet  # every character alone, too


def test_control_characters_and_nfc_decide_as_the_unicode_definitions() -> None:
    mixed = [*ASCII, *SPACES, "\u00e9", "e\u0301", "\u1780", "\u17d2", "\ud800", "\u2028", "\u2029", "\u0085"]
    for value in samples(1, ASCII) + samples(2, mixed):
        assert statements._has_control(value) == reference_has_control(value), repr(value)
        assert statements._is_nfc(value) == reference_is_nfc(value), repr(value)


def test_a_text_value_is_refused_for_the_same_reason_as_before() -> None:
    for value in ["Diploma 2026/1", "a\tb", "a\x7fb", "a\x1fb", " a", "ស្ថាប័ន", "e\u0301", "a\u2028b", "x" * 256]:
        try:
            statements.check_text_value(value, "ref")
            verdict = "ok"
        except MalformedError as exc:
            verdict = str(exc)
        size_ok = 1 <= len(value.encode()) <= statements.MAX_TEXT_VALUE
        expected = (
            "ref must be 1..255 bytes of UTF-8"
            if not size_ok
            else "ref must be NFC-normalised with no leading or trailing whitespace"
            if value != value.strip() or not reference_is_nfc(value)
            else "ref contains a control character"
            if reference_has_control(value)
            else "ok"
        )
        assert verdict == expected, repr(value)


def test_origins_and_key_names_refuse_every_unicode_space() -> None:
    names = ["log.example", "a+b", "", "x" * 40] + [f"log{s}example" for s in SPACES] + samples(3, [*ASCII, *SPACES])
    for name in names:
        assert statements._is_origin(name) == reference_is_origin(name), repr(name)
        plain = bool(name) and "+" not in name and not any(c.isspace() for c in name) and name.isprintable()
        assert is_valid_key_name(name) == plain, repr(name)


@pytest.mark.parametrize("alphabet", ["0123456789abcdef", "0123456789abcdefABCDEF\u0663\uff11 g-"])
def test_hex_hashes_are_read_only_in_lowercase_ascii_hex(alphabet: str) -> None:
    rng = random.Random(4)
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(64))
        if reference_hash_hex_ok(text):
            assert parse_hash_hex(text, "h") == bytes.fromhex(text)
        else:
            with pytest.raises(MalformedError, match=r"^h: want 64 lowercase hex digits$"):
                parse_hash_hex(text, "h")
