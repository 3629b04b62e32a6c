"""The key index (tlogcore.keystatus, docs/status-proofs.md §12): the vectors, the in-memory map against the slow
reference, and every single-byte change of a key's proof, record or root rejected."""

import json
import random
from pathlib import Path

import pytest
import statusindex_reference as ref

from tlogcore.errors import MalformedError, ProofError
from tlogcore.keys import Ed25519Signer
from tlogcore.keystatus import KeyMap, key_records, key_slot, registry_item, verify_key_status
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, Statement
from tlogcore.statusrecord import new_record, parse_record

VECTORS = json.loads((Path(__file__).parent / "vectors" / "statusindex" / "key_status.json").read_text("utf-8"))


def _vector_records() -> dict[str, object]:
    adds: dict[str, list[int]] = {}
    retires: dict[str, list[int]] = {}
    for index, kind, key in VECTORS["entries"]:
        (adds if kind == ISSUER_ADD else retires).setdefault(key, []).append(index)
    return {k: new_record(adds.get(k, ()), retires.get(k, ())) for k in adds.keys() | retires.keys()}


def test_the_vectors_root_slots_and_proofs() -> None:
    keymap = KeyMap(_vector_records())  # type: ignore[arg-type]
    assert keymap.root.hex() == VECTORS["root"]
    for case in VECTORS["cases"]:
        assert key_slot(case["key"]).hex() == case["slot"]
        record, proof = keymap.prove(case["key"])
        assert (record.to_bytes().hex() if record else None, proof.hex()) == (case["record"], case["proof"])
        claimed = parse_record(bytes.fromhex(case["record"])) if case["record"] else None
        verify_key_status(case["key"], claimed, bytes.fromhex(case["proof"]), bytes.fromhex(VECTORS["root"]))


@pytest.mark.parametrize("count", [0, 1, 2, 3, 17, 200])
def test_the_map_matches_the_reference(count: int) -> None:
    rng = random.Random(count)
    keys = [f"issuer{i}+{rng.getrandbits(32):08x}+AQ" for i in range(count + 3)]
    records = {
        k: new_record([rng.randrange(1000)], [rng.randrange(1000, 2000)] * rng.randrange(2)) for k in keys[:count]
    }
    keymap = KeyMap(records)
    items = {key_slot(k): r.to_bytes() for k, r in records.items()}
    assert keymap.root == ref.root(items)
    for key in keys:  # the last three are absent
        record, proof = keymap.prove(key)
        assert record == records.get(key)
        assert proof == ref.proof(items, key_slot(key))
        verify_key_status(key, record, proof, keymap.root)


def test_every_single_byte_change_is_rejected() -> None:
    records = _vector_records()
    keymap = KeyMap(records)  # type: ignore[arg-type]
    for case in VECTORS["cases"][:6]:  # five present, one absent
        key, root = case["key"], bytes.fromhex(VECTORS["root"])
        record, proof = keymap.prove(key)
        for i in range(len(proof)):
            bad = bytearray(proof)
            bad[i] ^= 0x01
            with pytest.raises(ProofError):
                verify_key_status(key, record, bytes(bad), root)
        for i in range(32):
            with pytest.raises(ProofError):
                verify_key_status(key, record, proof, root[:i] + bytes([root[i] ^ 0x80]) + root[i + 1 :])
        if record is not None:
            data = record.to_bytes()
            for i in range(len(data)):
                try:
                    changed = parse_record(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :])
                except MalformedError:
                    continue
                with pytest.raises(ProofError):
                    verify_key_status(key, changed, proof, root)
            with pytest.raises(ProofError):  # present, claimed absent
                verify_key_status(key, None, proof, root)


def test_a_proof_is_for_its_own_key_only() -> None:
    keymap = KeyMap(_vector_records())  # type: ignore[arg-type]
    first, second = (c["key"] for c in VECTORS["cases"][:2])
    record, proof = keymap.prove(first)
    with pytest.raises(ProofError):
        verify_key_status(second, record, proof, keymap.root)


def _statement(kind: str, issuer: str | None = None, document: bytes | None = None) -> Statement:
    signer = Ed25519Signer("registry.example.gov.kh", b"\x05" * 32)
    return Statement("log.example", kind, signer.verifier().vkey, 1, document=document, issuer=issuer)


def test_key_records_list_the_entries_naming_each_key_below_the_size() -> None:
    a, b = (Ed25519Signer(f"{n}.example", bytes([i]) * 32).verifier().vkey for i, n in ((1, "a"), (2, "b")))
    entries = [
        (0, _statement(ISSUER_ADD, issuer=a)),
        (1, _statement(ISSUE, document=b"\x01" * 32)),
        (2, _statement(ISSUER_ADD, issuer=b)),
        (3, _statement(ISSUER_RETIRE, issuer=a)),
        (4, _statement(ISSUER_RETIRE, issuer=b)),
    ]
    items = [item for index, s in entries if (item := registry_item(index, s)) is not None]
    assert items == [(0, ISSUER_ADD, a), (2, ISSUER_ADD, b), (3, ISSUER_RETIRE, a), (4, ISSUER_RETIRE, b)]
    assert key_records(items, 4) == {a: new_record([0], [3]), b: new_record([2])}
    assert key_records(items, 0) == {}
    assert key_records(items) == {a: new_record([0], [3]), b: new_record([2], [4])}
