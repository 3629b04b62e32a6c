"""Trust policies in the C2SP tlog-policy text format: which logs, which witnesses, what quorum.

    log <vkey> [<url>]                       the key name must equal the log origin; a log whose key was
                                             rotated is listed once per key, same origin (docs/thirty-years.md)
    witness <name> <vkey> [<url>]            a cosigner (type 0x04 or 0x06 vkey)
    group <name> <k|any|all> <member>...     k of the members (witnesses or earlier groups)
    quorum <name|none>                       exactly once

`#` starts a comment; blank lines are ignored. The Sigsum dialect, with raw
64-hex Ed25519 keys instead of vkeys, is accepted too: a log key's origin is
`sigsum.org/v1/tree/<hex SHA-256(key)>` and a witness's key name is its name.

A checkpoint is trusted when a listed log signed it and the quorum node is
satisfied by valid cosignatures (none dated over 10 minutes in the future).
With the log's key rotations known (`following`, tlogcore/logkey.py), a
checkpoint must carry the key its tree size calls for, and no key retired for
that size: the old key's signature after a rotation is refused.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from tlogcore.checkpoint import MAX_CHECKPOINT_NOTE_SIZE, Checkpoint, parse_checkpoint
from tlogcore.cosignature import MAX_FUTURE_SKEW, CosignatureV1Verifier, signature_timestamp
from tlogcore.errors import MalformedError, UnverifiedError
from tlogcore.keys import Ed25519Verifier, Verifier
from tlogcore.logkey import LogKeyRotation, check_chain, key_rule
from tlogcore.note import OpenedNote, open_note
from tlogcore.vkeys import LOG_KEYS, WITNESS_KEYS, parse_key_for

MAX_POLICY_SIZE = 256 * 1024
MAX_ITEMS = 1000
_TIMESTAMPED_TYPES = (0x04, 0x05, 0x06)


@dataclass(frozen=True)
class Group:
    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    logs: tuple[Verifier, ...]
    witnesses: dict[str, Verifier] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    quorum: str | None = None  # None: no cosignatures required ("quorum none")
    rotations: tuple[LogKeyRotation, ...] = ()  # the logs' announced key rotations, in log order (`following`)

    def log_for(self, origin: str) -> Verifier:
        for log in self.logs:
            if log.name == origin:
                return log
        raise UnverifiedError(f"origin {origin!r} is not a log this policy trusts")

    def log_keys_for(self, origin: str) -> tuple[Verifier, ...]:
        """Every key listed for `origin`, in policy order: after a rotation a log signs with either (the old
        before the overlap's end, the new after it; docs/thirty-years.md, "Log key rotation")."""
        keys = tuple(log for log in self.logs if log.name == origin)
        if not keys:
            raise UnverifiedError(f"origin {origin!r} is not a log this policy trusts")
        return keys

    def for_refresh(self) -> "Policy":
        """This policy for a bundle about to be moved onto the log's newest checkpoint, which must meet the
        quorum itself: the bundle's own checkpoint needs the log's signature by a listed key (cosignatures on it
        must still verify) but not today's quorum. The consistency proof carries trust from the newest back to it
        (RFC 9162 §2.1.4), so a proof printed with Ed25519 cosignatures reaches a post-quantum quorum
        (docs/thirty-years.md, "Refresh")."""
        return replace(self, quorum=None)

    def following(self, rotations: Sequence[LogKeyRotation]) -> "Policy":
        """This policy, applying the key rotations a log announced (each already proven in a trusted tree).

        Both keys of a rotation must be listed here: the announcement tells which key signs which sizes, the
        policy's owner decides which keys are trusted at all (docs/thirty-years.md, "Log key rotation").
        """
        listed = {log.vkey for log in self.logs}
        for rotation in rotations:
            for vkey in (rotation.old, rotation.new):
                if vkey not in listed:
                    raise UnverifiedError(
                        f"the log {rotation.origin!r} announced a key rotation to {rotation.new}; "
                        f"this policy does not list {vkey}: add 'log {vkey}' to the policy to follow it"
                    )
        known = {r.text for r in self.rotations}
        chain = (*self.rotations, *(r for r in rotations if r.text not in known))
        for origin in {r.origin for r in chain}:
            check_chain([r for r in chain if r.origin == origin])
        return replace(self, rotations=chain)

    def _check_log_signature(self, checkpoint: Checkpoint, opened: OpenedNote) -> None:
        keys = [log for log in self.logs if log.name == checkpoint.origin]
        if not keys:
            raise UnverifiedError(f"origin {checkpoint.origin!r} is not a log this policy trusts")
        signed = {log.vkey for log in keys if opened.verified_by(log) is not None}
        rotations = [r for r in self.rotations if r.origin == checkpoint.origin]
        if not rotations:  # no rotation known: any listed key of this log will do
            if not signed:
                raise UnverifiedError(f"checkpoint is not signed by the log key of {checkpoint.origin!r}")
            return
        rule = key_rule(rotations[0].old, rotations, checkpoint.size)
        if rule.required not in signed:
            raise UnverifiedError(
                f"checkpoint of size {checkpoint.size} is not signed by the log key {rule.required} that the "
                f"log's key rotation calls for from that size"
            )
        retired = signed - rule.allowed
        if retired:
            raise UnverifiedError(
                f"checkpoint of size {checkpoint.size} is signed by the log key {sorted(retired)[0]}, which the "
                "log retired before that size: the log misbehaved or its old key is misused"
            )

    def is_satisfied(self, cosigned: set[str]) -> bool:
        """Whether witnesses named in `cosigned` satisfy the quorum.

        One pass over the groups in definition order, each naming only earlier names (parse_policy
        enforces it). Found while fuzzing policies: the recursive walk this replaces took exponential
        time on groups sharing members (g2 = g1 + g0, g3 = g2 + g1, ...) and overflowed the stack on a long chain.
        """
        if self.quorum is None:
            return True
        satisfied = {name: name in cosigned for name in self.witnesses}
        for name, group in self.groups.items():
            satisfied[name] = sum(satisfied[m] for m in group.members) >= group.threshold
        return satisfied[self.quorum]

    def verify_checkpoint(self, note: bytes, now: float | None = None) -> "TrustedCheckpoint":
        """Open a signed checkpoint under this policy; raise unless log signature and quorum hold."""
        opened = open_note(note, [*self.logs, *self.witnesses.values()], MAX_CHECKPOINT_NOTE_SIZE)
        checkpoint = parse_checkpoint(opened.text)
        self._check_log_signature(checkpoint, opened)
        cosigned, times = set(), {}
        for name, witness in self.witnesses.items():
            signature = opened.verified_by(witness)
            if signature is None:
                continue
            time = signature_timestamp(signature.signature) if witness.key_type in _TIMESTAMPED_TYPES else None
            if time is not None and now is not None and time > now + MAX_FUTURE_SKEW:
                continue
            cosigned.add(name)
            if time:  # 0 claims no time (tlog-cosignature: an ML-DSA subtree cosignature's "no latest claim")
                times[name] = time
        if not self.is_satisfied(cosigned):
            raise UnverifiedError(
                f"witness quorum not met: cosigned by {sorted(cosigned) or 'none'} of {sorted(self.witnesses)}"
            )
        return TrustedCheckpoint(checkpoint, opened, frozenset(cosigned), times)


@dataclass(frozen=True)
class TrustedCheckpoint:
    checkpoint: Checkpoint
    opened: OpenedNote
    witnesses: frozenset[str]
    # the signed time of each counted cosignature that carries one (c2sp.org/tlog-cosignature: "as of this time,
    # this is the largest consistent tree I have seen"); tlogcore/freshness.py reads it
    times: Mapping[str, int] = field(default_factory=dict)


def _parse_key(token: str, kind: str, name: str) -> Verifier:
    if len(token) == 64 and all(c in "0123456789abcdef" for c in token):  # Sigsum dialect
        key = bytes.fromhex(token)
        if kind == "log":
            return Ed25519Verifier(f"sigsum.org/v1/tree/{hashlib.sha256(key).hexdigest()}", key)
        return CosignatureV1Verifier(name, key)
    return parse_key_for(token, LOG_KEYS if kind == "log" else WITNESS_KEYS, f"{kind} key")


def parse_policy(text: str) -> Policy:
    if len(text.encode()) > MAX_POLICY_SIZE:
        raise MalformedError("policy is too large")
    if any(not (c in "\t\n" or " " <= c <= "~" or ord(c) >= 0x80) for c in text):
        raise MalformedError("policy contains a character outside tab, LF and printable ASCII")
    logs: list[Verifier] = []
    witnesses: dict[str, Verifier] = {}
    groups: dict[str, Group] = {}
    quorum: list[str | None] = []
    keys_seen: set[tuple[str, int]] = set()
    for number, raw in enumerate(text.split("\n"), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        where = f"policy line {number}"
        kind, args = words[0], words[1:]
        if len(logs) + len(witnesses) + len(groups) > MAX_ITEMS:
            raise MalformedError(f"{where}: too many items")
        if kind == "log" and len(args) in (1, 2):
            verifier = _parse_key(args[0], "log", "")
        elif kind == "witness" and len(args) in (2, 3):
            if args[0] in witnesses or args[0] in groups:
                raise MalformedError(f"{where}: name {args[0]!r} is defined twice")
            verifier = _parse_key(args[1], "witness", args[0])
            witnesses[args[0]] = verifier
        elif kind == "group" and len(args) >= 3:
            groups[args[0]] = _parse_group(args, witnesses, groups, where)
            continue
        elif kind == "quorum" and len(args) == 1:
            if quorum:
                raise MalformedError(f"{where}: quorum is given twice")
            if args[0] != "none" and args[0] not in witnesses and args[0] not in groups:
                raise MalformedError(f"{where}: quorum names undefined {args[0]!r}")
            quorum.append(None if args[0] == "none" else args[0])
            continue
        else:
            raise MalformedError(f"{where}: cannot parse {raw.strip()[:60]!r}")
        identity = (verifier.name, verifier.key_id)
        if identity in keys_seen:
            raise MalformedError(f"{where}: key {verifier.name} is listed twice")
        keys_seen.add(identity)
        if kind == "log":
            logs.append(verifier)
    if not quorum:
        raise MalformedError("policy has no quorum line")
    if not logs:
        raise MalformedError("policy lists no log")
    return Policy(tuple(logs), witnesses, groups, quorum[0])


def _parse_group(args: list[str], witnesses: dict[str, Verifier], groups: dict[str, Group], where: str) -> Group:
    name, threshold_text, members = args[0], args[1], tuple(args[2:])
    if name in witnesses or name in groups or name == "none":
        raise MalformedError(f"{where}: name {name!r} is defined twice")
    if len(set(members)) != len(members):
        raise MalformedError(f"{where}: group {name!r} names a member twice")
    for member in members:
        if member not in witnesses and member not in groups:
            raise MalformedError(f"{where}: group {name!r} names undefined {member!r}")
    if threshold_text == "any":
        threshold = 1
    elif threshold_text == "all":
        threshold = len(members)
    # isascii: found by fuzzing, "²".isdigit() is true but int("²") raises ValueError.
    elif threshold_text.isascii() and threshold_text.isdigit() and str(int(threshold_text)) == threshold_text:
        threshold = int(threshold_text)
    else:
        raise MalformedError(f"{where}: group threshold {threshold_text!r} is not a number, any or all")
    if not 1 <= threshold <= len(members):
        raise MalformedError(f"{where}: group threshold {threshold} is not in 1..{len(members)}")
    return Group(name, threshold, members)
