"""A small, deterministic log built with the core alone: keys, statements, a cosigned checkpoint, a bundle."""

from dataclasses import dataclass

from tlogcore import merkle
from tlogcore.bundle import TlogProof, make_bundle
from tlogcore.checkpoint import Checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.keys import Ed25519Signer
from tlogcore.note import sign_note
from tlogcore.policy import Policy, parse_policy
from tlogcore.statement import ISSUE, Statement, sign_statement

ORIGIN = "log.example.gov.kh/documents"
NOW = 1_790_000_000


@dataclass
class MiniLog:
    log_key: Ed25519Signer
    issuer_key: Ed25519Signer
    witnesses: list[CosignatureV1Signer]
    entries: list[bytes]
    stored: list[bytes]
    policy: Policy

    def checkpoint(self, size: int, cosigners: int = 3) -> bytes:
        plan = merkle.root_plan(size)
        root = plan.assemble([self.stored[i] for i in plan.stored_indexes])[0] if size else merkle.EMPTY_ROOT
        return sign_note(Checkpoint(ORIGIN, size, root).text, [self.log_key, *self.witnesses[:cosigners]])

    def bundle(self, index: int, size: int, cosigners: int = 3) -> TlogProof:
        plan = merkle.inclusion_plan(index, size)
        proof = plan.assemble([self.stored[i] for i in plan.stored_indexes])
        return make_bundle(self.entries[index], index, proof, self.checkpoint(size, cosigners))


def document_hash(i: int) -> bytes:
    return bytes([i % 256]) * 31 + bytes([7])


def mini_log(count: int = 20) -> MiniLog:
    log_key = Ed25519Signer(ORIGIN, b"\x01" * 32)
    issuer_key = Ed25519Signer("moeys.gov.kh", b"\x02" * 32)
    witnesses = [CosignatureV1Signer(f"witness{i}.example.org", bytes([0x10 + i]) * 32, lambda: NOW) for i in range(3)]
    entries = [
        sign_statement(
            Statement(
                ORIGIN,
                ISSUE,
                issuer_key.verifier().vkey,
                NOW - 100 + i,
                document=document_hash(i),
                ref=f"បរិញ្ញាបត្រ No. {i}",
            ),
            issuer_key,
        )
        for i in range(count)
    ]
    stored = merkle.append_leaves(0, [], [merkle.leaf_hash(e) for e in entries]).new_hashes
    policy_text = (
        f"log {log_key.verifier().vkey}\n"
        + "".join(f"witness W{i} {w.verifier().vkey}\n" for i, w in enumerate(witnesses))
        + "group two-of-three 2 W0 W1 W2\nquorum two-of-three\n"
    )
    return MiniLog(log_key, issuer_key, witnesses, entries, stored, parse_policy(policy_text))
