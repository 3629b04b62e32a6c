"""`index-root` entries as the monitor's entry audit sees them (docs/status-proofs.md §7): like a statement, an
entry the log must have refused if it is malformed, for another log, or covers entries after itself. Pure."""

from tlogcore.errors import TlogError
from tlogcore.indexroot import IndexRoot, parse_index_root


def index_root_problem(
    data: bytes, index: int, origin: str, check_signature: bool
) -> tuple[IndexRoot | None, str | None]:
    """The parsed statement, and why the log should have refused it (None: it is well formed)."""
    try:
        statement = parse_index_root(data, check_signature=check_signature)
    except TlogError as exc:
        return None, f"not a valid index-root statement: {exc}"
    if statement.origin != origin:
        return statement, f"index-root is for log {statement.origin!r}, not this one"
    if statement.size > index:
        return statement, f"index-root in entry {index} claims to cover {statement.size} entries, past itself"
    return statement, None
