"""Writes tests/vectors/paperfields/paperfields.json and tests/vectors/qrlink/qrlink.json (deterministic keys
and salts, so a re-run gives the same files; the tests check that too).
Run: .venv/bin/python tests/vectors/make_vectors.py

Both files drive the Python tests (tests/test_paperfields_qrlink.py) and the page's JavaScript
(tests/test_web_printed_code.py), so the two decoders cannot drift apart."""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from corefixtures import NOW, ORIGIN  # noqa: E402

from tlogcore import merkle  # noqa: E402
from tlogcore.bundle import make_bundle  # noqa: E402
from tlogcore.checkpoint import Checkpoint  # noqa: E402
from tlogcore.cosignature import CosignatureV1Signer  # noqa: E402
from tlogcore.keys import Ed25519Signer  # noqa: E402
from tlogcore.note import sign_note  # noqa: E402
from tlogcore.paperfields import PaperFields  # noqa: E402
from tlogcore.qrlink import ALPHABET, base43_decode, base43_encode, link_url, offline_payload, online_payload  # noqa: E402
from tlogcore.statement import ISSUE, Statement, sign_statement  # noqa: E402

VERIFIER = "https://log.example.gov.kh/verify"
PAPERS = {
    3: PaperFields((("Name", "Sok Dara"), ("Diploma", "Bachelor of Law"), ("Date", "2026-07-01")), bytes(range(16))),
    5: PaperFields((("ឈ្មោះ", "សុខ ដារា"), ("សញ្ញាបត្រ", "បរិញ្ញាបត្រ ច្បាប់"), ("លេខ", "២០២៦/០០១៧")), bytes(range(100, 116))),
}


def paper_vectors() -> dict[str, object]:
    good = [
        {
            "fields": list(map(list, p.fields)),
            "salt": p.salt.hex(),
            "canonical": p.canonical().hex(),
            "document": p.document.hex(),
        }
        for p in PAPERS.values()
    ]
    base = PAPERS[3].canonical()
    count_at = 14 + 16
    bad = [
        {"why": "bad header", "canonical": (b"tlog-paper/v2\n" + base[14:]).hex()},
        {"why": "trailing byte", "canonical": (base + b"\x00").hex()},
        {"why": "truncated", "canonical": base[:-1].hex()},
        {"why": "no fields", "canonical": (base[:count_at] + b"\x00").hex()},
        {"why": "count says one more field", "canonical": (base[:count_at] + b"\x04" + base[count_at + 1 :]).hex()},
        {"why": "duplicate name", "canonical": (base[:count_at] + b"\x02" + b"\x01A\x01x\x01A\x01y").hex()},
        {"why": "not NFC", "canonical": (base[:count_at] + b"\x01\x01A\x03e\xcc\x81").hex()},
        {"why": "edge whitespace", "canonical": (base[:count_at] + b"\x01\x01A\x02x ").hex()},
        {"why": "control character", "canonical": (base[:count_at] + b"\x01\x01A\x03x\ny").hex()},
        {"why": "empty value", "canonical": (base[:count_at] + b"\x01\x01A\x00").hex()},
        {"why": "not UTF-8", "canonical": (base[:count_at] + b"\x01\x01A\x01\xff").hex()},
    ]
    return {"header": "tlog-paper/v1\\n", "good": good, "bad": bad}


def build_log() -> tuple[str, list[bytes], list[bytes], list[Ed25519Signer | CosignatureV1Signer]]:
    log_key = Ed25519Signer(ORIGIN, b"\x01" * 32)
    issuer = Ed25519Signer("moeys.gov.kh", b"\x02" * 32)
    witnesses = [CosignatureV1Signer(f"witness{i}.example.org", bytes([0x10 + i]) * 32, lambda: NOW) for i in range(3)]
    entries = []
    for i in range(7):
        document = PAPERS[i].document if i in PAPERS else bytes([i]) * 31 + b"\x07"
        statement = Statement(
            ORIGIN, ISSUE, issuer.verifier().vkey, NOW - 100 + i, document=document, ref=f"Diploma 2026/{i:04d}"
        )
        entries.append(sign_statement(statement, issuer))
    stored = merkle.append_leaves(0, [], [merkle.leaf_hash(e) for e in entries]).new_hashes
    policy = (
        f"log {log_key.verifier().vkey}\n"
        + "".join(f"witness W{i} {w.verifier().vkey}\n" for i, w in enumerate(witnesses))
        + "group two-of-three 2 W0 W1 W2\nquorum two-of-three\n"
    )
    return policy, entries, stored, [log_key, *witnesses]


def bundle_of(entries: list[bytes], stored: list[bytes], signers: list, index: int, cosigners: int = 3):  # type: ignore[no-untyped-def]
    size = len(entries)
    plan = merkle.root_plan(size)
    root = plan.assemble([stored[i] for i in plan.stored_indexes])[0]
    note = sign_note(Checkpoint(ORIGIN, size, root).text, signers[: 1 + cosigners])
    proof_plan = merkle.inclusion_plan(index, size)
    proof = proof_plan.assemble([stored[i] for i in proof_plan.stored_indexes])
    return make_bundle(entries[index], index, proof, note)


def mutate(url: str, at: int) -> str:
    """Change the base43 character at fragment position `at` to the next one in the alphabet."""
    head, _, fragment = url.partition("#TL1:")
    chars = list(fragment)
    chars[at] = ALPHABET[(ALPHABET.index(chars[at]) + 1) % 43]
    return f"{head}#TL1:{''.join(chars)}"


def relink(payload: bytes) -> str:
    return link_url(VERIFIER, payload)


def qrlink_vectors() -> dict[str, object]:
    policy, entries, stored, signers = build_log()
    good = []
    for index in (0, 3, 5, 6):
        bundle = bundle_of(entries, stored, signers, index)
        paper = PAPERS.get(index)
        document = paper.document if paper else bundle_document(bundle.extra or b"")
        for offline in (True, False):
            payload = offline_payload(bundle, paper) if offline else online_payload(document, index, paper)
            good.append(
                {
                    "name": f"{'offline' if offline else 'online'} #{index}{' paper' if paper else ''}",
                    "url": relink(payload),
                    "offline": offline,
                    "index": index,
                    "document": document.hex(),
                    "paper": {"fields": list(map(list, paper.fields)), "salt": paper.salt.hex()} if paper else None,
                    "bundle": bundle.to_text().decode() if offline else None,
                }
            )
    paper_bundle = bundle_of(entries, stored, signers, 3)
    paper_url = relink(offline_payload(paper_bundle, PAPERS[3]))
    plain = relink(offline_payload(bundle_of(entries, stored, signers, 0)))
    forged = PaperFields((("Name", "Sok Darb"), *PAPERS[3].fields[1:]), PAPERS[3].salt)
    resalted = PaperFields(PAPERS[3].fields, bytes(range(1, 17)))
    raw = base43_decode(paper_url.partition("#TL1:")[2])
    body = PAPERS[3].body()
    bad = [
        {"why": "one character of a paper field changed", "url": relink(raw.replace(body, forged.body()))},
        {"why": "the salt changed", "url": relink(raw.replace(body, resalted.body()))},
        {"why": "truncated", "url": relink(raw[:-1])},
        {"why": "a trailing byte", "url": relink(raw + b"\x00")},
        {"why": "an unknown flag", "url": relink(bytes([raw[0] | 0x80]) + raw[1:])},
        {
            "why": "only one cosignature",
            "url": relink(offline_payload(bundle_of(entries, stored, signers, 3, 1), PAPERS[3])),
        },
        {"why": "a character outside the alphabet", "url": paper_url[:-3] + "a" + paper_url[-2:]},
        {"why": "a base43 group out of range", "url": paper_url + ":::"},
        {"why": "a stray last character", "url": paper_url + "0"},
    ]
    fragment_len = len(plain.partition("#TL1:")[2])
    for at in (0, 60, 200, fragment_len // 2, fragment_len - 120, fragment_len - 4):
        bad.append({"why": f"one character changed at fragment position {at}", "url": mutate(plain, at)})
    base43 = [
        {"hex": h, "text": base43_encode(bytes.fromhex(h))}
        for h in ("", "00", "ff", "0000", "ffff", "4142", "414243", "00ff00ff")
    ]
    return {
        "policy": policy,
        "now": NOW,
        "verifier_url": VERIFIER,
        "base43": base43,
        "base43_bad": ["0", "0000", "a00", ":::", "::", "0 0"],
        "good": good,
        "bad": bad,
    }


def bundle_document(statement: bytes) -> bytes:
    from tlogcore.statement import parse_statement

    document = parse_statement(statement).document
    assert document is not None
    return document


def write(path: Path, data: dict[str, object]) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    write(HERE / "paperfields" / "paperfields.json", paper_vectors())
    write(HERE / "qrlink" / "qrlink.json", qrlink_vectors())


if __name__ == "__main__":
    main()
