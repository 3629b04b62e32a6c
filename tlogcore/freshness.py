"""How recent a trusted checkpoint is, by its witnesses' signed word (docs/trust.md "Freshness").

A checkpoint's own signature carries no time, so a lying server or a proxy can answer today with an older
checkpoint, cosigned back then, and with the answers of that time: a revocation logged since would not show. A
witness's cosignature does carry one: "as of this time, this is the largest consistent tree I have seen for this
origin" (c2sp.org/tlog-cosignature). The time a checkpoint is vouched current is therefore the latest T at which
the policy's quorum is met by cosignatures all dated T or later (`vouched_at`), and a verifier online refuses to
call a status proven when that is older than its maximum age (`is_stale`).

An idle log's newest checkpoint keeps its size: the log sends the same checkpoint to its witnesses again now and
then, and each answers with a fresh cosignature (c2sp.org/tlog-witness: "re-submitting the same size/root yields a
fresh cosignature"; logserver/witnessing.py `refresh`), so an honest log's newest checkpoint is never older than
that period. With `quorum none` no witness vouches for any time: freshness is the log's word, as everything else.
"""

from tlogcore.policy import Policy, TrustedCheckpoint

# A verifier online (tlog verify, the page) calls a status proven only on a checkpoint vouched current this
# recently: the log asks its witnesses again every 5 minutes when idle (REFRESH_SECONDS), so an hour leaves room
# for a witness that is down for most of one.
MAX_AGE_SECONDS = 3600
REFRESH_SECONDS = 300


def vouched_at(policy: Policy, trusted: TrustedCheckpoint) -> int | None:
    """The latest time at which the quorum vouched for this checkpoint being the newest it had seen; None with no
    quorum to ask (`quorum none`) or when the quorum's cosignatures carry no time."""
    if policy.quorum is None:
        return None
    for time in sorted(set(trusted.times.values()), reverse=True):
        if policy.is_satisfied({name for name, at in trusted.times.items() if at >= time}):
            return time
    return None


def is_stale(policy: Policy, trusted: TrustedCheckpoint, now: float, max_age: float) -> bool:
    """Whether the quorum last vouched for this checkpoint more than `max_age` seconds before `now` (never vouched:
    stale). False when there is nothing to measure: `max_age` 0 checks nothing, and `quorum none` asks no witness."""
    if max_age <= 0 or policy.quorum is None:
        return False
    at = vouched_at(policy, trusted)
    return at is None or now - at > max_age
