"""Availability alerts: a log that has not answered, or not grown, for longer than the configured thresholds, or
whose newest checkpoint the witnesses have not vouched for lately."""

import datetime
from dataclasses import dataclass

from monitor import alerts as A
from monitor.logcontext import LogContext, note_text


@dataclass
class Vouched:
    """The log's newest checkpoint as last fetched, the latest time its policy's quorum vouched for it
    (tlogcore.freshness.vouched_at; None: never, or `quorum none`), and since when the monitor has seen it unvouched
    for too long (this episode: one alert for it, and a new one for the next)."""

    size: int
    note: bytes
    at: int | None
    unvouched_since: float | None = None


def availability_alerts(
    context: LogContext, failing_since: float | None, last_error: str | None, now: float, vouched: Vouched | None = None
) -> list[A.Alert]:
    config = context.shared.config
    out = []
    if failing_since is not None and config.unreachable_after and now - failing_since >= config.unreachable_after:
        out.append(
            context.alert(
                A.RULE_UNREACHABLE,
                A.AVAILABILITY,
                f"since {int(failing_since)}",
                f"the log has not answered for {now - failing_since:.0f} s: {last_error}",
                {
                    "failing_since": int(failing_since),
                    "last_error": last_error,
                    "url": context.log_config.url,
                },
            )
        )
    row = context.state.log(context.origin)
    if row is not None and config.stale_after and now - row.last_growth_at >= config.stale_after:
        latest = row.target or row.verified
        size = latest.size if latest else 0
        out.append(
            context.alert(
                A.RULE_STALE,
                A.AVAILABILITY,
                f"size {size} since {int(row.last_growth_at)}",
                f"the log has not grown past size {size} for {now - row.last_growth_at:.0f} s"
                + (f" (last error: {last_error})" if last_error else ""),
                {
                    "size": size,
                    "since": int(row.last_growth_at),
                    "checkpoint": note_text(latest.note) if latest else None,
                },
            )
        )
    unvouched = unvouched_alert(context, vouched, now)
    return out + ([unvouched] if unvouched is not None else [])


def unvouched_alert(context: LogContext, vouched: Vouched | None, now: float) -> A.Alert | None:
    """The witnesses' quorum has not vouched for the log's newest checkpoint for longer than `unvouched_after`: every
    verifier online now says a document's status is "not proven current" (docs/trust.md "Freshness"). The log is
    not asking its witnesses again while idle (`witness_refresh_seconds`), they do not answer, or their clocks run
    behind. One alert per episode, however the vouched time moves within it (it moves at each refresh when the
    witnesses' clocks run behind); a checkpoint vouched for again ends the episode."""
    after = context.shared.config.unvouched_after
    if vouched is None or not after or context.log_config.policy.quorum is None:
        return None
    if vouched.at is not None and now - vouched.at <= after:
        vouched.unvouched_since = None
        return None
    if vouched.unvouched_since is None:
        vouched.unvouched_since = now
    since = "never" if vouched.at is None else datetime.datetime.fromtimestamp(vouched.at, datetime.UTC).isoformat()
    return context.alert(
        A.RULE_UNVOUCHED,
        A.AVAILABILITY,
        f"size {vouched.size} from {int(vouched.unvouched_since)}",
        f"the witnesses have not vouched for the log's newest checkpoint (size {vouched.size}) since {since}: "
        "verifiers no longer call a document's status proven current; the log is not asking its witnesses again, "
        "they do not answer, or their clocks run behind",
        {"size": vouched.size, "vouched_at": vouched.at, "checkpoint": note_text(vouched.note)},
    )
