"""Availability alerts: a log that has not answered, or not grown, for longer than the configured thresholds."""

from monitor import alerts as A
from monitor.logcontext import LogContext, note_text


def availability_alerts(
    context: LogContext, failing_since: float | None, last_error: str | None, now: float
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
    return out
