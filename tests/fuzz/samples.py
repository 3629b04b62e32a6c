"""Valid encodings of every fuzzed format, made with the real signers and taken from tests/vectors.

They seed the hypothesis mutators and the atheris corpora (`run_atheris --seed`).
Keys are fixed seeds and the witness clock is fixed, so the samples are the same on every run.
"""

import functools
import json
from pathlib import Path
from typing import Any

from tlogcore import merkle
from tlogcore.bundle import make_bundle, to_binary
from tlogcore.checkpoint import Checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.encoding import b64decode, b64encode
from tlogcore.keys import Ed25519Signer, format_signer_key
from tlogcore.note import sign_note
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, REVOKE, Statement, sign_statement
from tlogcore.tiles import Tile, encode_entry_bundle

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
ORIGIN = "log.example.gov.kh/documents"
NOW = 1_790_000_000


def _vectors(relative: str) -> Any:
    return json.loads((VECTORS / relative).read_text(encoding="utf-8"))


LOG_KEY = Ed25519Signer(ORIGIN, b"\x01" * 32)
ISSUER_KEY = Ed25519Signer("moeys.gov.kh", b"\x02" * 32)
REGISTRY_KEY = Ed25519Signer("registry.log.example.gov.kh", b"\x03" * 32)
WITNESS_KEYS = [CosignatureV1Signer(f"witness{i}.example.org", bytes([0x10 + i]) * 32, lambda: NOW) for i in range(2)]

POLICY = (
    f"log {LOG_KEY.verifier().vkey}\n"
    + "".join(f"witness w{i} {w.verifier().vkey}\n" for i, w in enumerate(WITNESS_KEYS))
    + "group both all w0 w1\ngroup either any w0 w1\nquorum either\n"
)
OTHER_LOG_KEY = Ed25519Signer("other.example.org", b"\x04" * 32)
POLICY_FILE = f"log {OTHER_LOG_KEY.verifier().vkey}\nquorum none\n"


def read_policy_file(path: Path) -> str:
    """The monitor's policy_file reader, without a disk: one known file, every other path missing."""
    if path.name == "policy.txt":
        return POLICY_FILE
    raise FileNotFoundError(2, "No such file or directory", str(path))


def statements() -> list[bytes]:
    issuer = ISSUER_KEY.verifier().vkey
    made = [
        (Statement(ORIGIN, ISSUE, issuer, NOW, document=bytes(range(32)), ref="បរិញ្ញាបត្រ No. 7"), ISSUER_KEY),
        (Statement(ORIGIN, REVOKE, issuer, NOW + 1, document=bytes(32), reason="issued in error"), ISSUER_KEY),
        (Statement(ORIGIN, ISSUER_ADD, REGISTRY_KEY.verifier().vkey, NOW, issuer=issuer, ref="MoEYS"), REGISTRY_KEY),
        (Statement(ORIGIN, ISSUER_RETIRE, REGISTRY_KEY.verifier().vkey, NOW, issuer=issuer), REGISTRY_KEY),
    ]
    return [sign_statement(statement, key) for statement, key in made]


@functools.cache
def _tree() -> tuple[list[bytes], list[bytes]]:
    entries = statements()
    stored = merkle.append_leaves(0, [], [merkle.leaf_hash(e) for e in entries]).new_hashes
    return entries, stored


@functools.cache
def signed_checkpoint(size: int, extensions: tuple[str, ...] = ()) -> bytes:
    _, stored = _tree()
    plan = merkle.root_plan(size)
    root = plan.assemble([stored[i] for i in plan.stored_indexes])[0] if size else merkle.EMPTY_ROOT
    return sign_note(Checkpoint(ORIGIN, size, root, extensions).text, [LOG_KEY, *WITNESS_KEYS])


@functools.cache
def all_samples() -> dict[str, list[bytes]]:
    entries, stored = _tree()
    size = len(entries)
    bundles = []
    for index in range(size):
        plan = merkle.inclusion_plan(index, size)
        proof = plan.assemble([stored[i] for i in plan.stored_indexes])
        bundles.append(make_bundle(entries[index], index, proof, signed_checkpoint(size)))
    note_cases = _vectors("note/signed_notes.json")["cases"]
    notes = [c["note"].encode() if "note" in c else bytes.fromhex(c["note_hex"]) for c in note_cases]
    checkpoints = _vectors("checkpoint/checkpoints.json")
    signed = [c["signed_note"].encode() for c in checkpoints["signed_checkpoints"]]
    bodies = [c["body"].encode() for c in checkpoints["body_parsing"]]
    vkeys = _vectors("note/vkeys.json")
    policies = _vectors("policy/policies.json")
    proofs = _vectors("proof/tlog_proof.json")
    tile_vectors = _vectors("tiles/tile_paths.json")
    witness_steps = _vectors("witness/add_checkpoint_sequence.json")["steps"]
    cosignatures = _vectors("cosignature/cosignatures.json")["vectors"]
    checkpoint_3 = signed_checkpoint(3)
    consistency = merkle.consistency_plan(2, 4)
    proof_2_4 = consistency.assemble([stored[i] for i in consistency.stored_indexes])
    witness_requests = [s["request_body"].encode() for s in witness_steps] + [
        b"old 0\n\n" + checkpoint_3,
        b"old 2\n" + b"".join(b64encode(h).encode() + b"\n" for h in proof_2_4) + b"\n" + signed_checkpoint(4),
    ]
    return {
        "note": notes + signed + entries[:1] + [checkpoint_3],
        "checkpoint": bodies + [Checkpoint(ORIGIN, 3, bytes(32), ("ext line", "x")).text.encode()],
        "statement": entries,
        "vkey": [v["vkey"].encode() for v in vkeys["vkeys"]] + [w.verifier().vkey.encode() for w in WITNESS_KEYS],
        "signer_key": [vkeys["go_private_key_format"]["example"].encode(), format_signer_key(ISSUER_KEY).encode()],
        "cosignature": [
            v["checkpoint_body"].encode() + b"\n" + b64decode(v["signature_line"].rsplit(" ", 1)[1], "line")[4:]
            for v in cosignatures
            if "checkpoint_body" in v and "signature_line" in v
        ],
        "tile_path": [c["path"].encode() for c in tile_vectors["encode"]]
        + [Tile(-1, 273, 112).path.encode(), Tile(2, 1234067).path.encode()],
        "entry_bundle": [encode_entry_bundle(entries), encode_entry_bundle([b"", b"a", b"\x00" * 300])],
        "witness_request": witness_requests,
        "bundle_text": [b.to_text() for b in bundles] + [p["serialized"].encode() for p in proofs["serialize"]],
        "bundle_binary": [to_binary(b) for b in bundles],
        "policy": [POLICY.encode(), policies["c2sp_example"]["policy_text"].encode()]
        + [p["policy_text"].encode() for p in policies["concrete"]]
        + [policies["sigsum_builtin"]["policy_text"].encode()],
        "config_logserver": [_config_text("logserver")],
        "config_witness": [_config_text("witness")],
        "config_monitor": [_config_text("monitor")],
    }


def _config_text(which: str) -> bytes:
    log_vkey = LOG_KEY.verifier().vkey
    witness_vkey = WITNESS_KEYS[0].verifier().vkey
    if which == "logserver":
        text = (
            f'[log]\norigin = "{ORIGIN}"\n[server]\nlisten = "127.0.0.1:8080"\nverify_workers = 2\n'
            "[sequencer]\nflush_interval_ms = 100\nmax_batch = 10000\nlease_ttl_seconds = 5.0\n"
            "[limits]\nmax_body_bytes = 4194304\n[witnessing]\nwitness_timeout_ms = 2000\n"
            f'[[witness]]\nurl = "http://127.0.0.1:7380/"\nvkey = "{witness_vkey}"\n'
        )
    elif which == "witness":
        text = (
            f'name = "witness0.example.org"\nlisten = "[::1]:7380"\n[[log]]\norigin = "{ORIGIN}"\nvkey = "{log_vkey}"\n'
        )
    else:
        text = (
            'state = "state.sqlite"\npoll_interval_seconds = 10\nverify = "tree"\n'
            f'[[log]]\nurl = "http://127.0.0.1:8080"\nvkey = "{log_vkey}"\nquorum = 1\n'
            f'[[log.witness]]\nname = "w0"\nvkey = "{witness_vkey}"\nurl = "http://127.0.0.1:7380"\n'
            '[[log]]\nurl = "http://127.0.0.1:8081"\npolicy_file = "policy.txt"\n'
            f'[[watch]]\nname = "moeys"\nissuer_names = ["moeys.gov.kh"]\nrevocations = true\n'
            '[[sink]]\ntype = "file"\nname = "alerts"\npath = "alerts.jsonl"\n'
        )
    return text.encode()
