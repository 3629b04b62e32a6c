"""Paper fields (tlogcore.paperfields) and QR links (tlogcore.qrlink) against their vector files, which the
page's JavaScript reads too (tests/test_web_printed_code.py); every single-byte change of an offline link
must fail to decode or to verify."""

import json
from pathlib import Path
from typing import Any

import pytest

from tlogcore.bundle import verify_bundle
from tlogcore.encoding import Reader
from tlogcore.errors import MalformedError, TlogError
from tlogcore.keys import Ed25519Signer
from tlogcore.paperfields import PaperFields, parse_canonical
from tlogcore.policy import parse_policy
from tlogcore.qrlink import (
    PREFIX,
    base43_decode,
    base43_encode,
    decode_payload,
    link_url,
    offline_payload,
    online_payload,
    qr_segments,
    split_link,
    to_bundle,
)

VECTORS = Path(__file__).parent / "vectors"
PAPER = json.loads((VECTORS / "paperfields" / "paperfields.json").read_text(encoding="utf-8"))
QR = json.loads((VECTORS / "qrlink" / "qrlink.json").read_text(encoding="utf-8"))
POLICY = parse_policy(QR["policy"])


def paper_of(item: dict[str, Any]) -> PaperFields:
    return PaperFields(tuple((n, v) for n, v in item["fields"]), bytes.fromhex(item["salt"]))


def test_vector_files_are_what_the_generator_writes() -> None:
    import sys

    sys.path.insert(0, str(VECTORS))
    import make_vectors

    assert make_vectors.paper_vectors() == PAPER
    assert make_vectors.qrlink_vectors() == QR


@pytest.mark.parametrize("item", PAPER["good"], ids=lambda i: i["document"][:8])
def test_paper_fields_good(item: dict[str, Any]) -> None:
    paper = paper_of(item)
    assert paper.canonical().hex() == item["canonical"]
    assert paper.document.hex() == item["document"]
    assert parse_canonical(bytes.fromhex(item["canonical"])) == paper


@pytest.mark.parametrize("item", PAPER["bad"], ids=lambda i: i["why"])
def test_paper_fields_bad(item: dict[str, Any]) -> None:
    with pytest.raises(MalformedError):
        parse_canonical(bytes.fromhex(item["canonical"]))


def test_paper_fields_one_character_or_the_salt_changes_the_hash() -> None:
    paper = paper_of(PAPER["good"][1])
    name, value = paper.fields[0]
    changed = PaperFields(((name, value[:-1] + "ក"), *paper.fields[1:]), paper.salt)
    assert changed.document != paper.document
    assert PaperFields(paper.fields, bytes(16)).document != paper.document
    assert PaperFields(tuple(reversed(paper.fields)), paper.salt).document != paper.document


@pytest.mark.parametrize(
    "fields, salt",
    [((), bytes(16)), ((("a", "b"),), bytes(15)), (tuple((f"n{i}", "v") for i in range(33)), bytes(16))],
)
def test_paper_fields_limits(fields: tuple[tuple[str, str], ...], salt: bytes) -> None:
    with pytest.raises(MalformedError):
        PaperFields(fields, salt)


@pytest.mark.parametrize("item", QR["base43"], ids=lambda i: i["hex"] or "empty")
def test_base43_good(item: dict[str, str]) -> None:
    assert base43_encode(bytes.fromhex(item["hex"])) == item["text"]
    assert base43_decode(item["text"]).hex() == item["hex"]


@pytest.mark.parametrize("text", QR["base43_bad"])
def test_base43_bad(text: str) -> None:
    with pytest.raises(MalformedError):
        base43_decode(text)


def test_base43_round_trip_every_two_byte_value() -> None:
    data = b"".join(n.to_bytes(2, "big") for n in range(65536))
    assert base43_decode(base43_encode(data)) == data


@pytest.mark.parametrize("item", QR["good"], ids=lambda i: i["name"])
def test_qrlink_good(item: dict[str, Any]) -> None:
    verifier, raw = split_link(item["url"])
    assert verifier == QR["verifier_url"]
    payload = decode_payload(raw)
    assert payload.index == item["index"]
    assert payload.document_hash.hex() == item["document"]
    paper = paper_of(item["paper"]) if item["paper"] else None
    assert payload.paper == paper
    if not item["offline"]:
        assert payload.offline is None
        assert online_payload(payload.document_hash, payload.index, paper) == raw
        return
    assert payload.offline is not None
    bundle = to_bundle(payload.offline, POLICY)
    assert bundle.to_text().decode() == item["bundle"]
    verified = verify_bundle(bundle, POLICY, QR["now"], bytes.fromhex(item["document"]))
    assert verified.index == item["index"]
    assert offline_payload(bundle, paper) == raw


def decode_and_verify(url: str) -> None:
    payload = decode_payload(split_link(url)[1])
    if payload.offline is not None:
        verify_bundle(to_bundle(payload.offline, POLICY), POLICY, QR["now"], payload.document_hash)


@pytest.mark.parametrize("item", QR["bad"], ids=lambda i: i["why"])
def test_qrlink_bad(item: dict[str, str]) -> None:
    with pytest.raises(TlogError):
        decode_and_verify(item["url"])


def test_every_single_byte_change_of_an_offline_paper_link_fails() -> None:
    """With just the quorum's two cosignatures: a third one's key ID changed only drops a spare cosignature."""
    item = next(i for i in QR["good"] if i["offline"] and i["paper"])
    payload = decode_payload(split_link(item["url"])[1])
    assert payload.offline is not None
    ids = [c.key_id for c in payload.offline.cosignatures[:2]]
    raw = offline_payload(to_bundle(payload.offline, POLICY), payload.paper, cosigners=ids)
    decode_and_verify(link_url(QR["verifier_url"], raw))
    for at in range(len(raw)):
        changed = raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :]
        with pytest.raises(TlogError):
            decode_and_verify(link_url(QR["verifier_url"], changed))


def test_origin_is_needed_when_the_policy_trusts_several_logs() -> None:
    item = next(i for i in QR["good"] if i["offline"] and not i["paper"])
    payload = decode_payload(split_link(item["url"])[1])
    assert payload.offline is not None
    bundle = to_bundle(payload.offline, POLICY)
    other = f"log {Ed25519Signer('other.example.org', bytes(32)).verifier().vkey}\n"
    two_logs = parse_policy(other + QR["policy"])
    with pytest.raises(MalformedError, match="several"):
        to_bundle(payload.offline, two_logs)
    with_origin = decode_payload(offline_payload(bundle, write_origin=True))
    assert with_origin.offline is not None
    assert to_bundle(with_origin.offline, two_logs) == bundle


def test_only_the_chosen_cosignatures_are_kept() -> None:
    item = next(i for i in QR["good"] if i["offline"] and not i["paper"])
    payload = decode_payload(split_link(item["url"])[1])
    assert payload.offline is not None
    bundle = to_bundle(payload.offline, POLICY)
    ids = [c.key_id for c in payload.offline.cosignatures]
    smaller = decode_payload(offline_payload(bundle, cosigners=ids[:2])).offline
    assert smaller is not None and [c.key_id for c in smaller.cosignatures] == ids[:2]
    verify_bundle(to_bundle(smaller, POLICY), POLICY, QR["now"])


def test_qr_segments_put_the_fragment_in_alphanumeric_mode() -> None:
    url = QR["good"][0]["url"]
    segments = qr_segments(url)
    assert segments[0] == (url.partition("#")[0] + "#", "byte")
    assert segments[1][1] == "alphanumeric" and segments[1][0].startswith(PREFIX)
    assert "".join(text for text, _ in segments) == url


@pytest.mark.parametrize("url", ["ftp://x/verify#TL1:00", "https://x/verify#h=00", "https://x/verify", "TL1:000"])
def test_split_link_refuses_what_is_not_a_link(url: str) -> None:
    with pytest.raises(MalformedError):
        split_link(url)


def test_reader_sees_the_paper_body_as_the_link_does() -> None:
    paper = paper_of(PAPER["good"][0])
    reader = Reader(paper.body())
    from tlogcore.paperfields import read_paper_fields

    assert read_paper_fields(reader) == paper
    reader.done("body")
