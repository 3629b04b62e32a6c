"""The statement parser's fast paths (issue 20: parsing was a quarter of a signature worker's time) decide exactly
as the plain definitions they replace, kept here as the slow, obviously-correct reference (STYLE.md §13)."""

import base64
import random
import sys
import unicodedata

import pytest

from tlogcore import statement as statements
from tlogcore.encoding import b64decode, b64encode, canonical_b64, parse_hash_b64, parse_hash_hex
from tlogcore.errors import MalformedError, SignatureError
from tlogcore.keys import Ed25519Signer, is_valid_key_name

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


def _statement_texts() -> list[str]:
    from tlogcore.keys import Ed25519Signer

    issuer = Ed25519Signer("issuer.example", b"\x01" * 32).verifier().vkey
    other = Ed25519Signer("issuer.example", b"\x02" * 32).verifier().vkey
    registry = Ed25519Signer("log.example/registry", b"\x03" * 32).verifier().vkey
    S = statements.Statement
    made = [
        S("log.example", statements.ISSUE, issuer, 1700000000, document=b"\xab" * 32, ref="Diploma 2026/1"),
        S("log.example", statements.ISSUE, issuer, 5, document=b"\x00" * 32),
        S("log.example", statements.REVOKE, issuer, 7, document=b"\x01" * 32, ref="ស្ថាប័ន", reason="lost"),
        S("log.example", statements.ISSUER_ADD, registry, 9, issuer=other, continues=issuer, ref="Ministry"),
        S("log.example", statements.ISSUER_RETIRE, registry, 9, issuer=issuer, unsafe_from=12, reason="stolen"),
        S("log.example", statements.ISSUER_RETIRE, registry, 9, issuer=issuer),
    ]
    return [s.text for s in made]


def _mutations(text: str, rng: random.Random) -> list[str]:
    lines = text[:-1].split("\n")
    out = [text, text[:-1], text + "\n", text + "ref x\n", text.replace("\n", "\r\n"), "\n".join(lines[:5]) + "\n"]
    for i in range(len(lines)):
        out.append("\n".join(lines[:i] + lines[i + 1 :]) + "\n")  # a line dropped
        out.append("\n".join(lines[: i + 1] + lines[i:]) + "\n")  # a line twice
        if i + 1 < len(lines):
            out.append("\n".join(lines[:i] + [lines[i + 1], lines[i]] + lines[i + 2 :]) + "\n")  # two swapped
        key = lines[i].partition(" ")[0]
        for value in ["", " x", "01", "AB" * 32, "ab" * 32, "0", "x y", "issue", "\u00a0"]:
            out.append("\n".join(lines[:i] + [f"{key} {value}"] + lines[i + 1 :]) + "\n")
        for extra in ["continues " + lines[3][7:], "unsafe-from 3", "reason r", "ref r", "document " + "cd" * 32]:
            out.append("\n".join(lines[: i + 1] + [extra] + lines[i + 1 :]) + "\n")
    for _ in range(200):  # single characters changed, dropped or added anywhere
        at = rng.randrange(len(text))
        char = rng.choice(["", " ", "\n", "x", "0", "A", "-"])
        out.append(text[:at] + char + text[at + rng.randint(0, 1) :])
    return out


def _outcome(parse: object, text: str) -> object:
    try:
        return parse(text)  # type: ignore[operator]
    except MalformedError as exc:
        return (type(exc), str(exc))


def test_the_canonical_text_match_decides_as_the_line_by_line_parse() -> None:
    """`_parse_text` takes a canonical statement in one regular-expression match and hands anything else to
    `_parse_lines` (the general parse it used to be): both give the same statement, or the same refusal."""
    rng, fast = random.Random(20), 0
    for text in _statement_texts():
        for variant in _mutations(text, rng):
            assert _outcome(statements._parse_text, variant) == _outcome(statements._parse_lines, variant), variant
            fast += statements._CANONICAL.fullmatch(variant) is not None
    assert fast > 100  # the fast path was taken, for good texts and for texts whose values are then refused


def test_a_statement_signature_with_stray_padding_bits_is_refused_as_not_canonical() -> None:
    """parse_statement no longer prints the note back to compare: one signature line that parses prints back as
    it came unless its base64 had non-zero padding bits (note.py), which is what it checks."""
    from tlogcore.encoding import b64encode
    from tlogcore.keys import Ed25519Signer
    from tlogcore.note import sign_note

    signer, text = Ed25519Signer("issuer.example", b"\x01" * 32), _statement_texts()[0]  # its signer's key
    good = sign_note(text, [signer])
    assert statements.parse_statement(good).text == text
    head, _, blob = good.rstrip(b"\n").rpartition(b" ")
    raw = base64.b64decode(blob)
    assert b64encode(raw).encode() == blob and blob.endswith(b"=")
    stray = blob[:-2] + bytes([blob[-2] + 1]) + b"="  # the last character's unused bits set: same bytes decoded
    assert base64.b64decode(stray) == raw
    with pytest.raises(MalformedError, match="canonical form"):
        statements.parse_statement(head + b" " + stray + b"\n")


def test_control_characters_are_found_in_the_bytes_as_in_the_text() -> None:
    """parse_note looks for control characters in the UTF-8 bytes (one C pass), not the decoded text: the same
    verdict for every character, alone and among Khmer and ASCII."""
    from tlogcore import note

    chars = [chr(c) for c in range(0x300)] + ["\u17d2", "\u2014", "\ud7ff", "\U0001f600", "\u2028"]
    for c in chars:
        for text in (c, "ក" + c + "a", "a\n" + c):
            with_text = with_bytes = "ok"
            try:
                note._check_characters(text, "note")
            except MalformedError as exc:
                with_text = str(exc)
            try:
                note._check_bytes(text.encode(), "note")
            except MalformedError as exc:
                with_bytes = str(exc)
            assert with_text == with_bytes, repr(text)


def reference_b64decode(text: str) -> bytes | str:
    """The plain definition (RFC 4648 §4 with padding, only the form that re-encodes the same): the bytes, or the
    reason `b64decode` gives for refusing."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return "x: not valid base64"
    return data if base64.b64encode(data).decode() == text else "x: base64 is not in canonical form"


def _base64_texts() -> list[str]:
    rng = random.Random(64)
    texts = [b64encode(rng.randbytes(n)) for n in range(0, 80)]
    alphabet = list("ABCxyz019+/=-_ \n\t") + ["\u00e9", "\u17d2"]
    for text in list(texts):
        for _ in range(8):
            at = rng.randrange(len(text) + 1)
            texts.append(text[:at] + rng.choice(alphabet) + text[at + rng.randint(0, 1) :])
    return texts + ["", "=", "==", "A===", "AA==AA==", "QQ", "QR==", "QQ==\n", "QQ==QQ==", "=QQ=", "Q===", "QQ="]


def test_base64_is_read_as_the_plain_definition_reads_it() -> None:
    """encoding.canonical_b64 (one C call) accepts exactly the text the plain definition accepts, with the same
    bytes; `b64decode`, which tries it first (every checkpoint root, proof line and signature line), returns the
    same bytes or refuses with the same message as the general path alone; so do hashes."""
    texts = _base64_texts()
    for text in texts:
        expected = reference_b64decode(text)
        assert canonical_b64(text) == (expected if isinstance(expected, bytes) else None), repr(text)
        try:
            got: bytes | str = b64decode(text, "x")
        except MalformedError as exc:
            got = str(exc)
        assert got == expected, repr(text)
    rng = random.Random(32)
    hashes = [b64encode(rng.randbytes(n)) for n in (31, 32, 33) for _ in range(20)]
    for text in hashes + texts:
        expected = reference_b64decode(text)
        try:
            parsed: bytes | str = parse_hash_b64(text, "x")
        except MalformedError as exc:
            parsed = str(exc)
        if isinstance(expected, bytes) and len(expected) != 32:
            expected = f"x: hash is {len(expected)} bytes, want 32"
        assert parsed == expected, repr(text)


def _signers() -> dict[str, Ed25519Signer]:
    return {
        s.verifier().vkey: s
        for s in (Ed25519Signer("issuer.example", b"\x01" * 32), Ed25519Signer("log.example/registry", b"\x03" * 32))
    }


def _signed(text: str, signer: Ed25519Signer, key_id: int | None = None) -> bytes:
    """`text` and a blank line and one signature line by `signer`, whatever the text (it need not be a statement,
    nor end with a newline)."""
    blob = (signer.key_id if key_id is None else key_id).to_bytes(4, "big") + signer.sign(text.encode())
    return f"{text}\n\u2014 {signer.name} {b64encode(blob)}\n".encode()


def _note_mutations(good: bytes, rng: random.Random) -> list[bytes]:
    """The signed bytes changed where the note's structure is: the blank line, the signature line, the encoding."""
    text, _, line = good.decode()[:-1].rpartition("\n\n")  # the text without its last newline
    name, _, blob = line[2:].partition(" ")
    raw = base64.b64decode(blob)
    other = base64.b64encode(raw[:4] + bytes([raw[4] ^ 1]) + raw[5:]).decode()
    out = [
        good,
        good[:-1],
        good + b"\n",
        good + good[-len(line.encode()) - 1 :],  # two signature lines
        good.replace(b"\n\n", b"\n\n\n"),
        good.replace(b"\n\n", b"\n"),
        good.replace(b"\n", b"\r\n"),
        f"{text}\n\n\u2014 {name}  {blob}\n".encode(),
        f"{text}\n\n\u2014 {name} {blob} \n".encode(),
        f"{text}\n\n\u2014 {name}x {blob}\n".encode(),
        f"{text}\n\n- {name} {blob}\n".encode(),
        f"{text}\n\n\u2014 {name} {blob[:-1]}\n".encode(),
        f"{text}\n\n\u2014 {name} {blob.rstrip('=')}\n".encode(),
        f"{text}\n\n\u2014 {name} {blob[:-2] + chr(ord(blob[-2]) + 1)}=\n".encode(),  # stray padding bits
        f"{text}\n\n\u2014 {name} {other}\n".encode(),  # the signature changed: does not verify
        f"{text}\n\n\u2014 {name} {base64.b64encode(raw[:4]).decode()}\n".encode(),  # a key ID alone
        f"{text}\n\n\u2014 {name} {base64.b64encode(raw[:5]).decode()}\n".encode(),
        f"{text}\n\n\u2014 {name} {base64.b64encode(bytes([raw[0] ^ 1]) + raw[1:]).decode()}\n".encode(),
        f"{text}\x01\n\n\u2014 {name} {blob}\n".encode(),
        good[:10] + b"\xff" + good[11:],
        good + b" " * statements.MAX_STATEMENT_SIZE,
    ]
    for _ in range(100):  # single bytes changed, dropped or added anywhere
        at = rng.randrange(len(good))
        out.append(
            good[:at] + rng.choice([b"", b" ", b"\n", b"x", b"0", b"A", b"\x00"]) + good[at + rng.randint(0, 1) :]
        )
    return out


def _signed_variants() -> list[bytes]:
    rng, signers, out = random.Random(21), _signers(), list[bytes]()
    for text in _statement_texts():
        signer = signers[text.split("\n")[3][len("signer ") :]]
        times = [text.replace("time 5\n", f"time {t}\n") for t in _TIMES]
        controls = [text.replace("log.example\n", f"log.exa{c}mple\n") for c in "\x00\t\r\x1f\x7f\x85\u2028"]
        for variant in _mutations(text, rng) + times + controls:
            out.append(_signed(variant, signer))
        good = _signed(text, signer)
        out += _note_mutations(good, rng)
        out.append(_signed(text, signer, key_id=signer.key_id ^ 1))
        other = next(s for s in signers.values() if s is not signer)
        out.append(_signed(text, other))  # signed by another key than its signer line names
    return out


_TIMES = ["1", "0", "05", "9" * 18, "1" + "0" * 17, "9" * 19, "9223372036854775807", "9223372036854775808", "-1"]


def _parse_outcome(data: bytes) -> object:
    try:
        return statements.parse_statement(data)
    except (MalformedError, SignatureError) as exc:
        return (type(exc), str(exc))


def test_the_whole_statement_match_decides_as_the_note_then_text_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """`_parse_signed` reads a canonical signed statement in one match, and hands anything else to
    `_parse_note_and_text` (the note, then the text, as before): whenever it answers, the general parse gives the
    same statement, key, signed text and signature; and parse_statement's verdict, signature checked, is the
    same with the fast path taken out."""
    variants, fast = _signed_variants(), 0
    for data in variants:
        taken = statements._parse_signed(data)
        if taken is not None:
            fast += 1
            statement, verifier, text, signature = statements._parse_note_and_text(data)
            assert taken[0] == statement and taken[1] is verifier, data
            assert taken[2:] == (text, signature), data
    with_fast = [_parse_outcome(data) for data in variants]
    monkeypatch.setattr(statements, "_parse_signed", lambda data: None)
    assert [_parse_outcome(data) for data in variants] == with_fast
    accepted = sum(isinstance(outcome, statements.Statement) for outcome in with_fast)
    assert fast > 150 and accepted > 50 and len(variants) - accepted > 500, (fast, accepted, len(variants))


def test_a_logged_documents_kind_and_hash_are_read_as_the_whole_parse_reads_them() -> None:
    """`logged_document` (the status index's read of logged entries) gives, for every statement parse_statement
    accepts, exactly its kind and document when it is an issue or revoke statement, and None otherwise."""
    variants, read = _signed_variants(), 0
    for data in variants:
        try:
            statement = statements.parse_statement(data, check_signature=False)
        except (MalformedError, SignatureError):  # never logged
            continue
        expected = (statement.kind, statement.document) if statement.kind in statements.DOCUMENT_KINDS else None
        assert statements.logged_document(data) == expected, data
        read += expected is not None
    assert read > 50, read


def test_the_fast_paths_statement_is_the_constructors() -> None:
    """`_checked_statement` (fields set as unpickling sets them, then `__post_init__`) takes exactly the dataclass's
    fields, and gives an equal statement with the same fields, or the same refusal, as `Statement(...)`."""
    import dataclasses
    import inspect

    names = [f.name for f in dataclasses.fields(statements.Statement)]
    assert list(inspect.signature(statements._checked_statement).parameters) == names
    issuer = Ed25519Signer("issuer.example", b"\x01" * 32).verifier().vkey
    base = {name: None for name in names} | {"origin": "log.example", "kind": "issue", "signer": issuer, "time": 5}
    changes: list[dict[str, object]] = [
        {"document": b"\x01" * 32},
        {"document": b"\x01" * 32, "ref": "Diploma"},
        {"document": b"\x01" * 31},
        {},
        {"issuer": issuer},
        {"kind": "issuer-add", "issuer": issuer, "continues": issuer},
        {"kind": "issuer-retire", "issuer": issuer, "unsafe_from": 3, "reason": "stolen"},
        {"kind": "revoke", "document": b"\x01" * 32, "reason": " x"},
        {"kind": "issue", "document": b"\x01" * 32, "reason": "x"},
        {"origin": "a b", "document": b"\x01" * 32},
        {"time": 0, "document": b"\x01" * 32},
        {"kind": "other"},
        {"signer": "not a key", "document": b"\x01" * 32},
    ]
    refused = 0
    for change in changes:
        fields = base | change
        try:
            made: object = statements.Statement(**fields)  # type: ignore[arg-type]
        except MalformedError as exc:
            made, refused = (type(exc), str(exc)), refused + 1
        try:
            fast: object = statements._checked_statement(**fields)  # type: ignore[arg-type]
        except MalformedError as exc:
            fast = (type(exc), str(exc))
        assert fast == made, change
        if isinstance(made, statements.Statement):
            assert vars(fast) == vars(made) and hash(fast) == hash(made), change
    assert 0 < refused < len(changes)
