"""The log's key rotations, audited (docs/thirty-years.md, "Log key rotation").

Each round, once the log's checkpoint verified under the policy: the rotations the log announced in that tree
(/api/v1/log-keys, each `tlog-log-key/v1` entry proven included and signed by the old log key and the registry key,
tlogcore/logkey.py) decide which log keys may sign a checkpoint of its size (`key_rule`). A signature by a key the
log retired before that size is misbehaviour (`log-retired-key`): the log, or whoever holds its old key, signs what
it promised not to. The entry audit checks every rotation entry too (logkeyentry.py, from audit.py); this check
needs only the list.
"""

import logging

from logserver.client import LogClient, LogClientError
from monitor import alerts as A
from monitor.logcontext import LogContext, NotVerified, note_text
from monitor.state import Signed
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.errors import TlogError
from tlogcore.logkey import LogKeyRotation, key_rule, proven_rotations
from tlogcore.note import open_note, parse_note

NOT_FOUND = 404  # a log from before rotations were built lists none
log = logging.getLogger("monitor.logkeys")


def signed_origin(signed: Signed) -> str:
    return parse_checkpoint(parse_note(signed.note).text).origin


async def announced(client: LogClient, signed: Signed) -> list[LogKeyRotation]:
    """The rotations in the tree of `signed`, proven against it; NotVerified when the list does not prove."""
    try:
        history = await client.log_keys(signed.size)
    except LogClientError as exc:  # the tree and its entries are still audited; this check waits for a round
        if exc.status != NOT_FOUND:  # that can read the list (the entry audit checks each rotation entry meanwhile)
            log.warning("%s: cannot read the log's key rotations: %s", signed_origin(signed), exc)
        return []
    checkpoint = parse_checkpoint(parse_note(signed.note).text)
    try:
        return proven_rotations([(e.index, e.statement, e.inclusion_proof) for e in history.entries], checkpoint)
    except TlogError as exc:
        raise NotVerified(f"the log's list of key rotations does not verify: {exc}") from None


def retired_key_problem(rotations: list[LogKeyRotation], note: bytes) -> tuple[str, str] | None:
    """(the retired key, the summary) when the checkpoint carries a log key its size no longer allows."""
    if not rotations:
        return None
    checkpoint = parse_checkpoint(parse_note(note).text)
    keys = {v.vkey: v for r in rotations for v in (r.old_verifier, r.new_verifier)}
    opened = open_note(note, keys.values())
    signed = {vkey for vkey, verifier in keys.items() if opened.verified_by(verifier) is not None}
    rule = key_rule(rotations[0].old, rotations, checkpoint.size)
    retired = sorted(signed - rule.allowed)
    if not retired:
        return None
    return retired[0], (
        f"the checkpoint of size {checkpoint.size} is signed by the log key {retired[0]}, which the log retired "
        f"before that size (from size {_until(rotations, retired[0])} on): the log misbehaved or its old key is "
        "misused"
    )


def _until(rotations: list[LogKeyRotation], vkey: str) -> int:
    return next(r.until for r in rotations if r.old == vkey)


async def check_log_keys(context: LogContext, client: LogClient, signed: Signed) -> None:
    """Raise the `log-retired-key` misbehaviour for a checkpoint signed by a key the log retired."""
    problem = retired_key_problem(await announced(client, signed), signed.note)
    if problem is not None:
        vkey, summary = problem
        raise context.misbehaviour(
            A.RULE_RETIRED_KEY, f"{vkey} {signed.size}", summary, {"checkpoint": note_text(signed.note)}
        )
