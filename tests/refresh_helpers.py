"""For the refresh tests (tools and page): a bundle from a forked tree, signed with a real log's and witnesses' keys."""

import time

from tools_stack import Stack

from tlogcore import merkle
from tlogcore.bundle import make_bundle, parse_tlog_proof
from tlogcore.checkpoint import Checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.keys import parse_signer_key
from tlogcore.note import sign_note


def forked_bundle(stack: Stack, old: bytes, size: int | None = None) -> bytes:
    """The same statement at the same index, in a tree (of `size` leaves; default two past it) whose other leaves
    differ from the log's: signed by the real log key and cosigned by two of the real witnesses' keys (what a log
    that forked would hand out)."""
    bundle = parse_tlog_proof(old)
    size = size or bundle.index + 2
    leaves = [merkle.leaf_hash(b"forked %d" % i) for i in range(size)]
    leaves[bundle.index] = merkle.leaf_hash(bundle.extra or b"")
    stored = merkle.append_leaves(0, [], leaves).new_hashes
    plan, root_plan = merkle.inclusion_plan(bundle.index, size), merkle.root_plan(size)
    proof = plan.assemble([stored[i] for i in plan.stored_indexes])
    root = root_plan.assemble([stored[i] for i in root_plan.stored_indexes])[0]
    log_key = parse_signer_key((stack.server.data / "log.key").read_text().strip())
    cosigners = []
    for w in stack.witnesses[:2]:
        key = parse_signer_key((w.data / "witness.key").read_text().strip())
        cosigners.append(CosignatureV1Signer(key.name, key.seed, time.time))
    note = sign_note(Checkpoint(log_key.name, size, root).text, [log_key, *cosigners])
    return make_bundle(bundle.extra or b"", bundle.index, proof, note).to_text()
