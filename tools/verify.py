"""`tlog verify`: a document against a proof bundle (offline) or against the log (online); pure but for the client.

Offline, only the trust policy is trusted: the bundle's statement signature, the checkpoint's log signature and
witness quorum, the inclusion proof, and that the statement is about the document in hand (its SHA-256).

Online, the log is asked and nothing it says is taken on its word: the current checkpoint must satisfy the
policy, every statement it returns about the document must be signed by its signer and proven included in that
checkpoint, and so must the `issuer-add` entries that registered the signers' keys (signed by the registry key the
log names). The issuing key must have been registered before the document's entry, else the verdict is "not from a
registered issuer"; the issuer is named by its registered label. The `issuer-retire` entries of those keys are proven
the same way: a key retired as stolen (`unsafe-from N`) that signed the document at entry N or later gives "signed
with a stolen key" (tlogcore/status.py); a key merely retired leaves its documents valid. Under a v2 index root the
log's key index proves those retirements (and registrations) complete for every key that signed a statement about
the document, so a stolen-key report left out is "tampered" (check_keys_complete). The verdict then follows
the one status rule (tlogcore/status.py) over the verified statements and the verified continuations. A log could
still hide a revocation from one verifier; monitors, which see every entry, are what catch that.
"""

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from logserver import api
from logserver.client import LogClient, LogClientError
from tlogcore.bundle import InconsistentLogError, Refreshed, TlogProof, VerifiedBundle, refresh_bundle, verify_bundle
from tlogcore.checkpoint import Checkpoint
from tlogcore.errors import MalformedError, ProofError, TlogError
from tlogcore.freshness import MAX_AGE_SECONDS, is_stale, vouched_at
from tlogcore.merkle import leaf_hash, verify_inclusion
from tlogcore.policy import Policy, TrustedCheckpoint
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, REVOKE, Statement, parse_statement
from tlogcore.status import REVOKED as REVOKED_STATUS
from tlogcore.status import UNKNOWN, counted_revocations, document_status, signed_while_unsafe, unshown_registration
from tools.logkeys import following_rotations
from tools.qr import OnlineRef, parse_payload
from tools.statusproof import KeyEntries, LeftOut, ProvenStatus, prove_status
from tools.verdict import (
    GENUINE,
    INPUT_ERROR,
    LOG_MISBEHAVED,
    NETWORK_ERROR,
    NOT_LOGGED,
    NOT_REGISTERED,
    REVOKED,
    STOLEN_KEY,
    TAMPERED,
    Outcome,
    Registered,
    describe,
    plain_client_error,
    verdict_for_error,
)


def load_bundle(data: bytes) -> TlogProof:
    """A bundle in any of its forms: tlog-proof text, binary, or the base64url of the binary."""
    found = parse_payload(data)
    if isinstance(found, OnlineRef):
        raise MalformedError("this is an online verify URL, not a bundle: use it with --qr-text alone")
    return found


def _witnesses(trusted: TrustedCheckpoint) -> tuple[str, ...]:
    return tuple(sorted(trusted.witnesses))


def check_bundle(document: bytes, bundle: TlogProof, policy: Policy, now: float) -> Outcome:
    """Offline verification of one bundle for the document whose SHA-256 is `document`."""
    try:
        verified = verify_bundle(bundle, policy, now)
    except TlogError as exc:
        return Outcome(verdict_for_error(exc), document, f"the bundle does not verify: {exc}")
    outcome = _bundle_outcome(document, verified, online=False)
    return dataclasses.replace(outcome, vouched_at=vouched_at(policy, verified.trusted))


def _bundle_outcome(document: bytes, verified: VerifiedBundle, online: bool) -> Outcome:
    statement, checkpoint, witnesses = verified.statement, verified.checkpoint, _witnesses(verified.trusted)
    where: dict[str, Any] = dict(statement=statement, index=verified.index, checkpoint=checkpoint, witnesses=witnesses)
    if statement.document is None:
        return Outcome(
            INPUT_ERROR, document, f"the bundle is a {statement.kind} statement, not about a document", **where
        )
    if statement.document != document:
        return Outcome(
            TAMPERED,
            document,
            f"the document's SHA-256 {document.hex()[:16]}... is not the one the "
            f"bundle vouches for ({statement.document.hex()[:16]}...): the document was changed",
            **where,
        )
    about = describe(statement, verified.index, checkpoint, witnesses, cosigned_at=newest_cosignature(verified.trusted))
    if statement.kind == REVOKE:
        return Outcome(REVOKED, document, f"this bundle is a revocation, {about}", **where)
    note = (
        ""
        if online
        else " (offline: revocation not checked, nor whether the key was reported stolen; use --log for it)"
    )
    return Outcome(GENUINE, document, about + note, **where)


async def check_online(
    client: LogClient,
    document: bytes,
    policy: Policy,
    now: float,
    bundle: TlogProof | None = None,
    url: str = "",
    max_age: float = MAX_AGE_SECONDS,
) -> Outcome:
    """`max_age`: seconds since the witnesses last vouched for the log's newest checkpoint beyond which a status
    is not proven (tlogcore/freshness.py; 0 checks nothing)."""
    try:
        try:
            return await _check_online(client, document, policy, now, bundle, max_age)
        except LeftOut:  # logged between the answer and the checkpoint (statusproof.LeftOut): ask once more
            return await _check_online(client, document, policy, now, bundle, max_age)
    except LogClientError as exc:
        return Outcome(NETWORK_ERROR, document, plain_client_error(url or "the configured URL", exc))
    except TlogError as exc:  # a second LeftOut included: tampered
        return Outcome(verdict_for_error(exc), document, f"the log's answer does not verify: {exc}")


async def _check_online(
    client: LogClient, document: bytes, policy: Policy, now: float, bundle: TlogProof | None, max_age: float
) -> Outcome:
    # The lookup before the checkpoint: its index root is inside a checkpoint the log published before answering,
    # so the newest one fetched after it holds that root. The other way round, a checkpoint published in between
    # put the root of an honest, busy log past the verifier's checkpoint, and the answer read as tampered.
    lookup = await client.document(document)
    newest = await client.checkpoint()
    policy = await following_rotations(client, newest, policy, now)  # a rotated log key: tools/logkeys.py
    trusted = policy.verify_checkpoint(newest, now)
    refreshed: Refreshed | None = None
    if bundle is not None:  # the bundle must verify (today's quorum is the newest's) and be refreshed onto it
        offline = check_bundle(document, bundle, policy.for_refresh(), now)
        if offline.verdict != GENUINE:
            return offline
        found = await refresh_online(client, bundle, newest, policy, now)
        if isinstance(found, InconsistentLogError):
            return misbehaved_outcome(document, found)
        refreshed = found
    stale = stale_words(policy, trusted, now, max_age)
    if stale is None and policy.quorum is None and max_age > 0:
        stale = UNDATED
    outcome = await _judge_online(client, document, lookup, trusted, stale)
    outcome = dataclasses.replace(outcome, vouched_at=vouched_at(policy, trusted))
    return outcome if refreshed is None else with_refresh_words(outcome, refreshed)


# `quorum none`: the policy trusts the log alone, and no witness dates its checkpoint; the status stays proven by the
# log's own signed index, but a replay of its older answers cannot be told apart (docs/trust.md "Freshness")
HIDDEN_REPORT = "a report that the key was stolen may be hidden from you"
UNDATED = "no witness dates the log's checkpoint (quorum none): whether it is recent is the log's word"


def stale_words(policy: Policy, trusted: TrustedCheckpoint, now: float, max_age: float) -> str | None:
    """Why a status cannot be proven current, when the witnesses last vouched for the log's newest checkpoint too
    long ago (tlogcore/freshness.py): a proxy replaying an older cosigned checkpoint with that time's answers, or
    a log whose witnesses stopped answering. None when fresh enough."""
    if not is_stale(policy, trusted, now, max_age):
        return None
    at = vouched_at(policy, trusted)
    limit = f"the {_duration(max_age)} this verifier accepts (--max-age)"
    size = trusted.checkpoint.size
    if at is None:
        when = (
            f"no quorum of the witnesses' cosignatures on the log's newest checkpoint (tree size {size}) carries a time"
        )
    else:
        stamp = datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        when = (
            f"the witnesses last vouched for the log's newest checkpoint (tree size {size}) at {stamp}, "
            f"{_duration(now - at)} ago, longer than {limit}"
        )
    return f"the log's word, not proven current: {when}; a revocation logged since would not show"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)} second{'s' if int(seconds) != 1 else ''}"
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    return f"{hours} hours" if hours < 48 else f"{hours // 24} days"


async def _judge_online(
    client: LogClient, document: bytes, lookup: api.DocumentHistory, trusted: TrustedCheckpoint, stale: str | None
) -> Outcome:
    current = trusted.checkpoint
    included: list[tuple[int, Statement]] = []
    for item in lookup.statements:
        if item.index >= current.size:
            continue  # not yet in a checkpoint the policy accepts
        statement = await _proven(client, item.index, item.statement, current)
        if statement.document != document:
            raise MalformedError(f"the log returned entry {item.index}, which is about another document")
        included.append((item.index, statement))
    registry_keys = frozenset((await client.info()).registry_vkeys)
    registered = await _registrations(client, lookup.registrations, registry_keys, current)
    retired = await _retirements(client, lookup.retirements, registry_keys, current)
    unsafe = {key: s.unsafe_from for key, found in retired.items() for _, s in found if s.unsafe_from is not None}
    proven, keys_proven = None, False
    if lookup.index is not None:
        proven = await prove_status(client, document, lookup.index, current, registry_keys)
        check_complete(proven, included)
        keys_proven = check_keys_complete(proven, included, registered, retired)
    check_registrations_shown(included, registered)
    return online_verdict(document, included, registered, trusted, proven, unsafe, stale, keys_proven)


def continuations(registered: Mapping[str, tuple[int, Statement]]) -> dict[str, str]:
    """Which key continues which, from the proven registrations (vkey -> the key its issuer-add continues)."""
    return {key: s.continues for key, (_, s) in registered.items() if s.continues is not None}


def check_registrations_shown(
    included: Sequence[tuple[int, Statement]], registered: Mapping[str, tuple[int, Statement]]
) -> None:
    """Every registration that decides whether a revocation counts was shown (tlogcore.status.unshown_registration):
    else the answer is incomplete, and "not revoked" could be a revocation made not to count."""
    continues = continuations(registered)
    missing = unshown_registration([s for _, s in included], registered.keys(), continues)
    if missing is not None:
        raise ProofError(
            f"a revocation of this document relies on key {missing}, but the log did not show that key's "
            "registration: whether the revocation counts cannot be told, and it may be hidden from you"
        )


def check_keys_complete(
    proven: ProvenStatus,
    included: Sequence[tuple[int, Statement]],
    registered: Mapping[str, tuple[int, Statement]],
    retired: Mapping[str, Sequence[tuple[int, Statement]]],
) -> bool:
    """The registration and retirements shown for each key that signed a statement about the document are exactly
    the ones the log's key index lists, and the gap holds (docs/status-proofs.md §12): a stolen-key report left out
    of the answer is caught here, up to the entry the index and gap cover even when the gap was too long to read
    (then "proven" reaches only that far). True when proven; False under a v1 index root or an unread gap."""
    signers = sorted({s.signer for _, s in included})
    if proven.keys is None:  # a v1 root proves no key record, but a report read in the gap is never ignored
        for index, kind, vkey in proven.gap_registry:
            shown = {i for i, _ in retired.get(vkey, ())}
            if kind == ISSUER_RETIRE and vkey in signers and index not in shown:
                raise LeftOut(f"entry {index} retires key {vkey}, but the log did not return it: {HIDDEN_REPORT}")
        return False
    for vkey in signers:
        entries = proven.keys.get(vkey)
        if entries is None:
            raise ProofError(f"the log gave no key index proof for key {vkey}, which signed a statement about this")
        _check_key_listed(vkey, entries, proven.checked_to, registered.get(vkey), retired.get(vkey, ()))
    return proven.complete


def _check_key_listed(
    vkey: str,
    entries: KeyEntries,
    checked_to: int,
    registration: tuple[int, Statement] | None,
    retirements: Sequence[tuple[int, Statement]],
) -> None:
    shown = {index for index, _ in retirements}
    hidden = sorted(set(entries.retired) - shown)
    if hidden:
        raise LeftOut(
            f"the log's own key index lists entry {hidden[0]} retiring key {vkey}, but the log did not return "
            f"it: {HIDDEN_REPORT}"
        )
    unlisted = sorted(index for index in shown - set(entries.retired) if index < checked_to)
    if unlisted:
        raise ProofError(f"entry {unlisted[0]} retires key {vkey}, but the key index does not list it")
    if registration is not None and registration[0] < checked_to and registration[0] not in entries.added:
        raise ProofError(f"entry {registration[0]} registers key {vkey}, but the key index does not list it")
    if registration is None and entries.added:
        raise LeftOut(
            f"the log's own key index lists entry {entries.added[0]}, the registration of key {vkey}, but the "
            "log did not return it"
        )


def check_complete(proven: ProvenStatus, included: Sequence[tuple[int, Statement]]) -> None:
    """The statements the log returned are exactly the ones its own index lists (and the gap holds), each of
    the listed kind: a revocation left out of the answer is caught here (docs/status-proofs.md §9, step 4)."""
    kinds = {index: statement.kind for index, statement in included}
    for index in sorted(proven.listed):
        if index not in kinds:
            raise LeftOut(
                f"the log's own status index lists entry {index} about this document, but the log did not return "
                "it: a revocation may be hidden from you"
            )
        if kinds[index] != (ISSUE if index in proven.issued else REVOKE):
            raise ProofError(f"entry {index} is not the kind of statement the log's status index lists")
    extra = [index for index in kinds if index < proven.checked_to and index not in proven.listed]
    if extra:
        raise ProofError(f"entry {extra[0]} is about this document, but the log's status index does not list it")


# --- refresh (docs/thirty-years.md, "Refresh") ---------------------------------


async def refresh_online(
    client: LogClient, bundle: TlogProof, newest: bytes, policy: Policy, now: float
) -> Refreshed | InconsistentLogError:
    """The bundle moved onto the log's newest checkpoint with the log's proofs, or the evidence that the log forked.

    The bundle must already verify under `policy.for_refresh()`; nothing the log sends is taken on its word
    (refresh_bundle)."""
    old = verify_bundle(bundle, policy.for_refresh(), now).checkpoint
    new = policy.verify_checkpoint(newest, now).checkpoint
    if new.size < old.size:
        return InconsistentLogError(
            f"the log's newest checkpoint (size {new.size}) is smaller than the bundle's (size {old.size})",
            bundle.checkpoint,
            newest,
            (),
        )
    consistency = (await client.consistency_proof(old.size, new.size)).proof if 0 < old.size < new.size else ()
    inclusion = (await client.inclusion_proof(bundle.index, new.size)).proof
    try:
        return refresh_bundle(bundle, newest, consistency, inclusion, policy, now)
    except InconsistentLogError as exc:
        return exc


def misbehaved_outcome(document: bytes, exc: InconsistentLogError) -> Outcome:
    """Two validly signed checkpoints that are not one history: the loud verdict, with what proves it."""
    return Outcome(
        LOG_MISBEHAVED,
        document,
        f"the log misbehaved: {exc}. Keep the bundle and report it to the log's operator and its monitors; "
        "the document cannot be judged against this log",
    )


def newest_cosignature(trusted: TrustedCheckpoint) -> float | None:
    """The newest counted cosignature's timestamp (c2sp.org/tlog-cosignature: the signed time), None without one. Only
    those the policy counted: a witness whose clock runs days ahead is not counted, and its time is not shown as
    the others' (nor, at 2^62 seconds, given to a date formatter)."""
    return max(trusted.times.values()) if trusted.times else None


def relied_on(trusted: TrustedCheckpoint) -> str:
    """The checkpoint a verdict stands on, in words: size, newest cosignature time if any, cosigners."""
    newest = newest_cosignature(trusted)
    when = ""
    if newest is not None:
        stamp = datetime.datetime.fromtimestamp(newest, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        when = f", cosigned at {stamp}"
    cosigners = ", ".join(sorted(trusted.witnesses)) or "no witness"
    return f"checkpoint of tree size {trusted.checkpoint.size}{when} by {cosigners}"


def with_refresh_words(outcome: Outcome, refreshed: Refreshed) -> Outcome:
    """The verdict, saying that it relied on the log's newest checkpoint rather than the bundle's own."""
    newest = relied_on(refreshed.verified.trusted)
    if refreshed.changed:
        words = (
            f"relied on the log's newest {newest}, refreshed from the bundle's (tree size {refreshed.previous.size})"
        )
    else:
        words = f"relied on the bundle's own {newest}, which is the log's newest"
    return dataclasses.replace(outcome, message=f"{outcome.message}; {words}", refreshed_from=refreshed.previous.size)


async def _proven(client: LogClient, index: int, raw: bytes, current: Checkpoint) -> Statement:
    """A statement the log returned, signed by its signer and proven included in the trusted checkpoint."""
    statement = parse_statement(raw)
    if statement.origin != current.origin:
        raise MalformedError(f"the log returned entry {index}, which is for another log")
    proof = (await client.inclusion_proof(index, current.size)).proof
    verify_inclusion(leaf_hash(raw), index, current.size, proof, current.root)
    return statement


async def _registrations(
    client: LogClient, listed: Sequence[api.Registration], registry_keys: frozenset[str], current: Checkpoint
) -> dict[str, tuple[int, Statement]]:
    """The issuer-add entries the log returned, each proven included and signed by a registry key: vkey -> entry.
    Which keys are the registry's is the log's word (GET /api/v1/log); monitors audit it (DESIGN.md)."""
    found: dict[str, tuple[int, Statement]] = {}
    for item in listed:
        if item.index >= current.size:
            continue
        statement = await _proven(client, item.index, item.statement, current)
        if statement.kind != ISSUER_ADD or statement.issuer != item.key or statement.signer not in registry_keys:
            raise MalformedError(f"entry {item.index} is not an issuer-add of {item.key} by the registry key")
        found[item.key] = (item.index, statement)
    return found


async def _retirements(
    client: LogClient, listed: Sequence[api.Retirement], registry_keys: frozenset[str], current: Checkpoint
) -> dict[str, list[tuple[int, Statement]]]:
    """The issuer-retire entries the log returned, each proven included and signed by a registry key, by the key
    they retire; one with `unsafe-from N` reports the key stolen from entry N on."""
    found: dict[str, list[tuple[int, Statement]]] = {}
    for item in listed:
        if item.index >= current.size:
            continue
        statement = await _proven(client, item.index, item.statement, current)
        if statement.kind != ISSUER_RETIRE or statement.issuer != item.key or statement.signer not in registry_keys:
            raise MalformedError(f"entry {item.index} is not an issuer-retire of {item.key} by the registry key")
        found.setdefault(item.key, []).append((item.index, statement))
    return found


def online_verdict(
    document: bytes,
    included: Sequence[tuple[int, Statement]],
    registered: Mapping[str, tuple[int, Statement]],
    trusted: TrustedCheckpoint,
    proven: ProvenStatus | None = None,
    unsafe_from: Mapping[str, int] | None = None,
    stale: str | None = None,
    keys_proven: bool = False,
) -> Outcome:
    """`stale`: why the status is not proven current (`stale_words`), which then replaces the index's proof; or
    UNDATED, said beside it. `keys_proven`: the signers' stolen-key reports proven complete (check_keys_complete)."""
    current, witnesses = trusted.checkpoint, _witnesses(trusted)
    proof_words = proven.words() if proven is not None else "not proven: the log gave no status index proof"
    undated = stale == UNDATED
    status_proven = proven is not None and proven.complete and (stale is None or undated)
    if stale is not None:
        proof_words = f"{proof_words}; {stale}" if undated else stale
    statements = [s for _, s in included]
    continues = continuations(registered)
    status = document_status(statements, continues)
    if status == UNKNOWN:
        return Outcome(
            NOT_LOGGED,
            document,
            f"{current.origin} (tree size {current.size}) holds no issue statement about SHA-256 {document.hex()}"
            f"; {proof_words}",
            checkpoint=current,
            witnesses=witnesses,
            status_proven=status_proven,
        )
    index, statement = next((i, s) for i, s in included if s.kind == ISSUE)
    entry = registered.get(statement.signer)
    known = Registered(entry[1].ref, entry[0]) if entry is not None and entry[0] < index else None
    where: dict[str, Any] = dict(statement=statement, index=index, checkpoint=current, witnesses=witnesses)
    where["status_proven"] = status_proven
    where["key_status_proven"] = key_status_proven = keys_proven and status_proven
    about = describe(statement, index, current, witnesses, known, online=True, cosigned_at=newest_cosignature(trusted))
    if known is None:
        return Outcome(NOT_REGISTERED, document, f"signed and logged, but {about}", **where)
    where["registered"] = known
    if signed_while_unsafe(statement.signer, index, unsafe_from or {}):
        marker = (unsafe_from or {})[statement.signer]
        return Outcome(
            STOLEN_KEY,
            document,
            f"do not trust this document: the issuer reported its key stolen, unsafe from entry {marker}, and this "
            f"document was signed in entry {index}, so a thief may have made it; it was {about}",
            **where,
        )
    if status == REVOKED_STATUS:
        revoke = counted_revocations(statements, continues)[0]
        revoke_index = next(i for i, s in included if s is revoke)
        reason = f" ({revoke.reason})" if revoke.reason else ""
        return Outcome(
            REVOKED,
            document,
            f"revoked{reason} by key {revoke.signer} in entry {revoke_index}; it was {about}",
            **where,
        )
    unsafe = "whether this key was reported stolen: none shown, the log's word (monitors check it)"
    if key_status_proven and proven is not None:
        unsafe = (
            f"key not reported stolen: proven by the log's key index (root logged in entry {proven.index_root_entry})"
        )
    return Outcome(GENUINE, document, f"{about}; not revoked: {proof_words}; {unsafe}", **where)
