"""Writes the status index vectors beside this script, from fixed seeds (a re-run gives the same files; the
tests check that too). Run: .venv/bin/python tests/vectors/statusindex/make.py

Roots and proofs come from the slow reference (tests/statusindex_reference.py), never from the fast code the
vectors test. Files:
  records.json     status record encodings, good and bad (docs/status-proofs.md §2)
  proofs.json      maps with their roots; per case: key, claimed record (or null), proof, root, expect_valid
  roots.json       roots of small maps built from log entries, for anyone reimplementing the hashing
  index_root.json  signed index-root statements, v1 and v2, good and mutated (docs/status-proofs.md §7)
  key_status.json  a key index (docs/status-proofs.md §12): registry entries, each key's slot and record, the
                   root, and a proof per key, present and absent
"""

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE.parent.parent.parent))

import statusindex_reference as ref  # noqa: E402

from tlogcore.encoding import b64encode  # noqa: E402
from tlogcore.indexroot import IndexRoot, sign_index_root  # noqa: E402
from tlogcore.keys import Ed25519Signer  # noqa: E402

ORIGIN = "log.example.gov.kh/documents"
NOW = 1_790_000_000
REGISTRY = Ed25519Signer("registry.example.gov.kh", bytes(range(32)))


def record_vectors() -> dict[str, Any]:
    good = [
        ("issued once", [7], []),
        ("issued then revoked", [7], [9]),
        ("re-issued after a revocation", [7, 12], [9]),
        ("revoked only (a revocation of a document never issued)", [], [3]),
        ("largest index", [2**63 - 1], []),
    ]
    bad = [
        ("empty input", ""),
        ("unknown version", "02" + ref.record_bytes([7], []).hex()[2:]),
        ("no entries at all", ref.record_bytes([], []).hex()),
        ("issue indexes not ascending", ref.record_bytes([9, 7], []).hex()),
        ("issue index repeated", ref.record_bytes([7, 7], []).hex()),
        ("one entry both issues and revokes", ref.record_bytes([7], [7]).hex()),
        ("index of 2^63", ref.record_bytes([2**63], []).hex()),
        ("trailing byte", ref.record_bytes([7], []).hex() + "00"),
        ("truncated index", ref.record_bytes([7], []).hex()[:-6]),
        ("count says two, one index follows", "010002" + (7).to_bytes(8, "big").hex() + "0000"),
    ]
    return {
        "good": [{"name": n, "issued": i, "revoked": r, "bytes": ref.record_bytes(i, r).hex()} for n, i, r in good],
        "bad": [{"name": n, "bytes": b} for n, b in bad],
    }


def crafted_keys(rng: random.Random) -> dict[str, bytes]:
    """Keys that make the interesting shapes: a pair differing only in the last bit (leaves at depth 256),
    a pair sharing 40 bits, and random ones."""
    deep = rng.randbytes(32)
    near = rng.randbytes(32)
    return {
        "deep0": deep[:31] + bytes([deep[31] & 0xFE]),
        "deep1": deep[:31] + bytes([deep[31] | 0x01]),
        "near0": near,
        "near1": near[:5] + bytes([near[5] ^ 0x80]) + rng.randbytes(26),
    }


def make_map(rng: random.Random, count: int) -> tuple[dict[bytes, bytes], dict[str, bytes]]:
    named = crafted_keys(rng)
    items = {key: ref.record_bytes([rng.randrange(1000)], []) for key in named.values()}
    named["revoked"], named["reissued"] = rng.randbytes(32), rng.randbytes(32)
    items[named["revoked"]] = ref.record_bytes([1001], [1002])
    items[named["reissued"]] = ref.record_bytes([1003, 1005], [1004])
    while len(items) < count:
        items[rng.randbytes(32)] = ref.record_bytes([rng.randrange(1000)], [])
    return items, named


def case(name: str, items: dict[bytes, bytes], key: bytes, root: bytes) -> dict[str, Any]:
    """A good case: the proof the reference makes for `key`, with the key's true record (or null if absent)."""
    record = items.get(key)
    return {
        "name": name,
        "key": key.hex(),
        "record": record.hex() if record is not None else None,
        "proof": ref.proof(items, key).hex(),
        "root": root.hex(),
        "expect_valid": True,
    }


def absent_key_under_leaf(key: bytes) -> bytes:
    """A key not in the map whose path ends in `key`'s leaf: flip the last bit (depth of `key`'s leaf < 256)."""
    return key[:31] + bytes([key[31] ^ 0x01])


def mutated(base: dict[str, Any], name: str, **changes: Any) -> dict[str, Any]:
    return {**base, **changes, "name": name, "expect_valid": False}


def proof_cases(rng: random.Random) -> list[dict[str, Any]]:
    items, named = make_map(rng, 200)
    root = ref.root(items)
    cases = [
        case("present: issued once", items, named["near0"], root),
        case("present: leaf at depth 256", items, named["deep1"], root),
        case("present: revoked", items, named["revoked"], root),
        case("present: re-issued after a revocation", items, named["reissued"], root),
        case("absent: path ends in an empty subtree", items, rng.randbytes(32), root),
        case("absent: path ends in another key's leaf", items, absent_key_under_leaf(named["near0"]), root),
    ]
    single_key = rng.randbytes(32)
    single = {single_key: ref.record_bytes([0], [])}
    cases += [
        case("empty index: absent", {}, rng.randbytes(32), ref.root({})),
        case("one-key index: present", single, single_key, ref.root(single)),
        case("one-key index: absent (the other leaf is the root)", single, rng.randbytes(32), ref.root(single)),
    ]
    present, absent, other = cases[2], cases[4], cases[5]
    proof = present["proof"]
    cases += [
        mutated(present, "revoked document claimed not revoked", record=ref.record_bytes([1001], []).hex()),
        mutated(present, "present document claimed absent", record=None),
        mutated(absent, "absent document claimed present", record=ref.record_bytes([5], []).hex()),
        mutated(present, "proof for another root", root=ref.root({**items, rng.randbytes(32): b"\x01"}).hex()),
        mutated(present, "truncated by one byte", proof=proof[:-2]),
        mutated(present, "one byte appended", proof=proof + "00"),
        mutated(present, "kind says absent (empty)", proof="01" + proof[2:]),
        mutated(present, "two siblings swapped", proof=proof[:66] + proof[130:194] + proof[66:130] + proof[194:]),
        mutated(
            other, "the other leaf is the key itself", proof=other["proof"][:-128] + other["key"] + other["proof"][-64:]
        ),
        mutated(
            present,
            "presence turned into absence naming the key itself as the other leaf",
            record=None,
            proof="02" + proof[2:] + present["key"] + ref._h(bytes.fromhex(present["record"])).hex(),
        ),
        misplaced_leaf_case(rng),
        mutated(absent, "unknown kind 0x03", proof="03" + absent["proof"][2:]),
        mutated(absent, "empty proof", proof=""),
    ]
    return cases


def misplaced_leaf_case(rng: random.Random) -> dict[str, Any]:
    """A malformed tree (root = node(leaf(K), leaf(K3)), K starting with bit 1 but placed left) proves nothing:
    the absence of K2 (bit 0) through the misplaced leaf K is refused because K does not share K2's first bit."""
    k, k3, k2 = (bytes([first]) + rng.randbytes(31) for first in (0x80, 0xC0, 0x00))
    record = ref.record_bytes([1], [])
    root = ref._h(b"\x11" + ref.leaf(k, record) + ref.leaf(k3, record))
    bitmap = bytes([0x80]) + bytes(31)
    proof = b"\x02" + bitmap + ref.leaf(k3, record) + k + ref._h(record)
    base = {"key": k2.hex(), "record": None, "proof": proof.hex(), "root": root.hex()}
    return mutated(base, "malformed tree: the other leaf sits off its own key's path")


def root_vectors() -> list[dict[str, Any]]:
    """Roots of maps built from log entries: (document, kind, index) in log order, to one root per prefix."""
    rng = random.Random(19_3)
    documents = [rng.randbytes(32) for _ in range(6)]
    entries = [(documents[i % 6], "issue", i) for i in range(6)] + [
        (documents[1], "revoke", 6),
        (documents[1], "issue", 7),
    ]
    out, issued, revoked = [{"entries": 0, "root": ref.root({}).hex()}], {}, {}
    for size, (document, kind, index) in enumerate(entries, start=1):
        (issued if kind == "issue" else revoked).setdefault(document, []).append(index)
        items = {d: ref.record_bytes(issued.get(d, []), revoked.get(d, [])) for d in {*issued, *revoked}}
        out.append({"entries": size, "root": ref.root(items).hex()})
    return [{"entries": [[d.hex(), k, i] for d, k, i in entries], "roots": out}]


def index_root_vectors() -> dict[str, Any]:
    statement = IndexRoot(ORIGIN, REGISTRY.verifier().vkey, NOW, 1048576, bytes(range(32)))
    good = sign_index_root(statement, REGISTRY).decode()
    text, signature = good.split("\n\n")
    other = Ed25519Signer("registry.example.gov.kh", bytes(range(1, 33)))
    keys = bytes(range(32, 64))
    v2 = sign_index_root(IndexRoot(ORIGIN, statement.signer, NOW, 1048576, statement.root, keys), REGISTRY).decode()
    v2_text = v2.split("\n\n")[0]
    bad = [
        ("size with a leading zero", good.replace("size 1048576", "size 01048576")),
        ("fields out of order", good.replace("time 1790000000\nsize 1048576", "size 1048576\ntime 1790000000")),
        ("unknown header", good.replace("tlog-index-root/v1", "tlog-index-root/v3")),
        ("v2 header without the keys line", good.replace("tlog-index-root/v1", "tlog-index-root/v2")),
        ("v1 header with a keys line", v2.replace("tlog-index-root/v2", "tlog-index-root/v1")),
        ("v2 keys of 31 bytes", v2.replace(f"keys {b64encode(keys)}", f"keys {b64encode(keys[:31])}")),
        ("v2 keys before root", _swap_last_lines(v2_text) + "\n\n" + v2.split("\n\n")[1]),
        (
            "root of 31 bytes",
            good.replace(f"root {b64encode(statement.root)}", f"root {b64encode(statement.root[:31])}"),
        ),
        ("extra field", text + "\ncount 5\n\n" + signature),
        ("signed by another key of the same name", text + "\n\n" + _signature_line(other, text + "\n")),
        ("text changed after signing", good.replace("size 1048576", "size 1048577")),
        ("two signatures", good + _signature_line(other, text + "\n")),
    ]
    return {
        "good": [
            {
                "name": "index-root for 2^20 entries",
                "signed": good,
                "origin": ORIGIN,
                "signer": statement.signer,
                "time": NOW,
                "size": 1048576,
                "root": bytes(range(32)).hex(),
                "keys": None,
            },
            {
                "name": "index-root v2 for 2^20 entries, with a key index root",
                "signed": v2,
                "origin": ORIGIN,
                "signer": statement.signer,
                "time": NOW,
                "size": 1048576,
                "root": bytes(range(32)).hex(),
                "keys": keys.hex(),
            },
        ],
        "bad": [{"name": n, "signed": s} for n, s in bad],
    }


def _swap_last_lines(text: str) -> str:
    *head, root, keys = text.split("\n")
    return "\n".join([*head, keys, root])


def key_slot(vkey: str) -> bytes:
    """Written out here with hashlib, not through tlogcore.keystatus (the code the vectors test)."""
    return hashlib.sha256(b"tlog-key-slot/v1\n" + vkey.encode()).digest()


def key_status_vectors() -> dict[str, Any]:
    """A registry of five keys in log order (two retired, one as stolen, one rotated), and a proof per key."""
    keys = [Ed25519Signer(f"issuer{i}.example.gov.kh", bytes([i + 7]) * 32).verifier().vkey for i in range(9)]
    entries = [  # (index, kind, key): what a key record lists, whoever signed it
        (0, "issuer-add", keys[0]),
        (1, "issuer-add", keys[1]),
        (5, "issuer-add", keys[2]),
        (9, "issuer-retire", keys[1]),
        (12, "issuer-add", keys[3]),
        (20, "issuer-retire", keys[2]),
        (21, "issuer-add", keys[4]),
    ]
    records: dict[str, tuple[list[int], list[int]]] = {}
    for index, kind, key in entries:
        records.setdefault(key, ([], []))[0 if kind == "issuer-add" else 1].append(index)
    items = {key_slot(k): ref.record_bytes(*r) for k, r in records.items()}
    root = ref.root(items)
    cases = []
    for key in keys:  # keys[5:] are absent
        slot = key_slot(key)
        cases.append(
            {
                "key": key,
                "slot": slot.hex(),
                "record": items[slot].hex() if slot in items else None,
                "proof": ref.proof(items, slot).hex(),
            }
        )
    return {"entries": [[i, k, key] for i, k, key in entries], "root": root.hex(), "cases": cases}


def _signature_line(signer: Ed25519Signer, text: str) -> str:
    from tlogcore.note import signature_for

    return signature_for(text, signer).line


def all_files() -> dict[str, Any]:
    return {
        "records.json": record_vectors(),
        "proofs.json": {"cases": proof_cases(random.Random(19))},
        "roots.json": {"sequences": root_vectors()},
        "index_root.json": index_root_vectors(),
        "key_status.json": key_status_vectors(),
    }


def main() -> None:
    for name, data in all_files().items():
        (HERE / name).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
