"""The entry audit's check of a `tlog-log-key/v1` entry (tlogcore/logkey.py), called from audit.py: the
statement must parse strictly, carry the old log key's and the registry key's signatures, and name this log. Which
checkpoints each key may sign after it is logkeys.py."""

from tlogcore.errors import TlogError
from tlogcore.logkey import parse_log_key_rotation


def log_key_problem(data: bytes, origin: str) -> str | None:
    """Why the log should have refused this log-key entry, or None."""
    try:
        rotation = parse_log_key_rotation(data)
    except TlogError as exc:
        return f"not a valid log-key statement: {exc}"
    return None if rotation.origin == origin else f"log-key statement is for log {rotation.origin!r}, not this one"
