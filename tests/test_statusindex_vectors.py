"""The status index vectors (tests/vectors/statusindex, made by the slow reference), one parametrized test per file;
every single-byte change of a good proof, record, key or root is rejected."""

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tlogcore.errors import MalformedError, ProofError, SignatureError
from tlogcore.indexroot import parse_index_root
from tlogcore.statusindex import key_int, parse_proof, verify_status
from tlogcore.statusindex_nodes import PathPlan, read_paths
from tlogcore.statusrecord import StatusRecord, _parse_with_reader, parse_record

HERE = Path(__file__).parent / "vectors" / "statusindex"


def load(name: str) -> Any:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


RECORDS, PROOFS, ROOTS, INDEX_ROOTS, KEY_STATUS = (
    load(f"{n}.json") for n in ("records", "proofs", "roots", "index_root", "key_status")
)
GOOD_PROOFS = [c for c in PROOFS["cases"] if c["expect_valid"]]


def test_vector_files_are_what_the_generator_writes() -> None:
    sys.path.insert(0, str(HERE))
    import make

    assert make.all_files() == {
        "records.json": RECORDS,
        "proofs.json": PROOFS,
        "roots.json": ROOTS,
        "index_root.json": INDEX_ROOTS,
        "key_status.json": KEY_STATUS,
    }


@pytest.mark.parametrize("v", RECORDS["good"], ids=[v["name"] for v in RECORDS["good"]])
def test_good_records(v: dict[str, Any]) -> None:
    record = parse_record(bytes.fromhex(v["bytes"]))
    assert record == StatusRecord(tuple(v["issued"]), tuple(v["revoked"]))
    assert record.to_bytes().hex() == v["bytes"]


@pytest.mark.parametrize("v", RECORDS["bad"], ids=[v["name"] for v in RECORDS["bad"]])
def test_bad_records(v: dict[str, Any]) -> None:
    with pytest.raises(MalformedError):
        parse_record(bytes.fromhex(v["bytes"]))


def parsed(parse: Any, data: bytes) -> StatusRecord | str:
    try:
        return parse(data)  # type: ignore[no-any-return]
    except MalformedError:
        return "malformed"


@pytest.mark.parametrize("v", RECORDS["good"], ids=[v["name"] for v in RECORDS["good"]])
def test_fast_record_parse_agrees_with_the_reader(v: dict[str, Any]) -> None:
    """parse_record's length-first path and the Reader it falls back on give the same answer: the good record,
    every prefix, trailing bytes, and every single-byte change (counts, version, indexes)."""
    data = bytes.fromhex(v["bytes"])
    variants = [data[:cut] for cut in range(len(data))] + [data + b"\x00", data + bytes(8)] + mutations(data)
    disagree = [m.hex() for m in [data, *variants] if parsed(parse_record, m) != parsed(_parse_with_reader, m)]
    assert disagree == []
    assert parsed(parse_record, data) == StatusRecord(tuple(v["issued"]), tuple(v["revoked"]))


def verifies(key: bytes, record: bytes | None, proof: bytes, root: bytes) -> bool:
    try:
        verify_status(key, parse_record(record) if record is not None else None, proof, root)
    except (ProofError, MalformedError):
        return False
    return True


def unpack(v: dict[str, Any]) -> tuple[bytes, bytes | None, bytes, bytes]:
    record = bytes.fromhex(v["record"]) if v["record"] is not None else None
    return bytes.fromhex(v["key"]), record, bytes.fromhex(v["proof"]), bytes.fromhex(v["root"])


@pytest.mark.parametrize("v", PROOFS["cases"], ids=[v["name"] for v in PROOFS["cases"]])
def test_proofs(v: dict[str, Any]) -> None:
    assert verifies(*unpack(v)) == v["expect_valid"]


def mutations(data: bytes) -> list[bytes]:
    """Every byte position changed three ways (low bit, high bit, every bit), and the kind byte every way."""
    out = [data[:i] + bytes([data[i] ^ flip]) + data[i + 1 :] for i in range(len(data)) for flip in (0x01, 0x80, 0xFF)]
    if data:
        out += [bytes([kind]) + data[1:] for kind in range(256) if kind != data[0]]
    return out


@pytest.mark.parametrize("v", GOOD_PROOFS, ids=[v["name"] for v in GOOD_PROOFS])
def test_every_single_byte_mutation_is_rejected(v: dict[str, Any]) -> None:
    key, record, proof, root = unpack(v)
    assert verifies(key, record, proof, root)
    accepted = [m.hex() for m in mutations(proof) if verifies(key, record, m, root)]
    accepted += [m.hex() for m in mutations(root) if verifies(key, record, proof, m)]
    accepted += [m.hex() for m in mutations(record or b"") if verifies(key, m, proof, root)]
    assert accepted == []
    # A changed key is rejected, except that an absence proof rightly covers every key whose path ends in the
    # same terminal: the keys that share the first `depth` bits (and are not the other leaf's key).
    depth = parse_proof(proof).depth
    other_keys = [m for m in mutations(key) if verifies(m, record, proof, root)]
    assert all(key_int(m) >> (256 - depth) == key_int(key) >> (256 - depth) for m in other_keys)
    assert record is None or other_keys == []


@pytest.mark.parametrize("v", ROOTS["sequences"], ids=lambda v: f"{len(v['entries'])} entries")
def test_roots_of_entry_sequences(v: dict[str, Any]) -> None:
    """The fast update, one entry at a time through stored rows, reaches the reference's root after every entry."""
    rows: dict[Any, Any] = {}
    roots = [read_paths(PathPlan([]), rows).root_hash().hex()]
    for document_hex, kind, index in v["entries"]:
        document = bytes.fromhex(document_hex)
        update = read_paths(PathPlan([document]), rows).apply_entries([(index, kind, document)])
        rows.update(update.writes)
        roots.append(update.root.hex())
    assert roots == [r["root"] for r in v["roots"]]


@pytest.mark.parametrize("v", INDEX_ROOTS["good"] + INDEX_ROOTS["bad"], ids=lambda v: v["name"])
def test_index_root_statements(v: dict[str, Any]) -> None:
    data = v["signed"].encode()
    if "origin" not in v:
        with pytest.raises((MalformedError, SignatureError)):
            parse_index_root(data)
        return
    statement = parse_index_root(data)
    keys = statement.keys.hex() if statement.keys is not None else None
    assert (statement.origin, statement.signer, statement.time, statement.size, statement.root.hex(), keys) == (
        v["origin"],
        v["signer"],
        v["time"],
        v["size"],
        v["root"],
        v["keys"],
    )
