"""Following a log's key rotations online (docs/thirty-years.md, "Log key rotation"): the `tlog-log-key/v1`
entries the log lists at /api/v1/log-keys, each proven included in the log's newest checkpoint and signed by the old
log key and the registry key, applied to the trust policy with `Policy.following` (tlogcore/policy.py).

After that, a checkpoint must carry the key its size calls for: one signed by the old key after the overlap is
refused ("the log retired that key before that size").
"""

from logserver.client import LogClient, LogClientError
from tlogcore.checkpoint import parse_checkpoint
from tlogcore.errors import MalformedError, TlogError, UnverifiedError
from tlogcore.logkey import LogKeyRotation, parse_log_key_rotation, proven_rotations
from tlogcore.note import parse_note
from tlogcore.policy import Policy

NOT_FOUND = 404


async def announced_rotations(client: LogClient, newest: bytes, policy: Policy, now: float) -> list[LogKeyRotation]:
    """The rotations the log announced in the tree of `newest` (which must satisfy `policy` with any listed key)."""
    try:
        current = policy.verify_checkpoint(newest, now).checkpoint
    except UnverifiedError as exc:
        hint = await _rotation_hint(client, newest, policy)
        if hint is None:
            raise
        raise UnverifiedError(f"{exc}; {hint}") from None
    try:
        history = await client.log_keys(current.size)
    except LogClientError as exc:
        if exc.status == NOT_FOUND:  # a log from before rotations were built announces none
            return []
        raise
    if history.size != current.size:
        raise MalformedError(f"the log listed its key rotations for size {history.size}, not {current.size}")
    return proven_rotations([(e.index, e.statement, e.inclusion_proof) for e in history.entries], current)


async def following_rotations(client: LogClient, newest: bytes, policy: Policy, now: float) -> Policy:
    """`policy`, following the rotations the log announced (UnverifiedError if it does not list a key they name)."""
    return policy.following(await announced_rotations(client, newest, policy, now))


async def _rotation_hint(client: LogClient, newest: bytes, policy: Policy) -> str | None:
    """Why a checkpoint the policy refuses may be fine: the log announced a new key, signed by a key the policy
    lists, that the policy does not list yet (the verdict stays a refusal: the policy's owner decides)."""
    listed = {log.vkey for log in policy.logs}
    try:
        size = parse_checkpoint(parse_note(newest).text).size
        entries = (await client.log_keys(size)).entries
        rotations = [(e.index, parse_log_key_rotation(e.statement)) for e in entries]
    except (TlogError, LogClientError):
        return None
    for index, rotation in rotations:
        if rotation.old in listed and rotation.new not in listed:
            return (
                f"the log announced a new log key in entry {index}, signed by the key this policy lists: if you "
                f"trust it, add 'log {rotation.new}' to the policy (docs/thirty-years.md, \"Log key rotation\")"
            )
    return None
