"""Where the registry's ownership rule starts, for a log made before it (issue 16, tlogcore/registry.py).

A key name and a label belong to one issuer. A log made before that rule may hold `issuer-add` entries that
break it (two issuers under one name); replaying them with the rule made such a log refuse to start. They stay
as logged: on the first start that finds them, the rule is recorded to apply from the log's size at that moment,
in `<data>/registry-rule.json`, and the operator is told in one line; every later start reads that index, so an
entry at or after it that breaks the rule (which the log itself would have refused) still stops the server.
A log with none records index 0: the rule applies to all of it.
"""

import json
import logging
import os
from pathlib import Path

from logserver.storage import Storage, StorageError
from tlogcore.logkey import is_log_key
from tlogcore.registry import Registry
from tlogcore.statement import parse_statement

RULE_FILE = "registry-rule.json"
log = logging.getLogger("logserver")


async def names_owned_from(storage: Storage, registry_keys: frozenset[str], data: Path) -> int:
    """The index the ownership rule applies from: recorded, or found and recorded now."""
    path = data / RULE_FILE
    if path.exists():
        return read_rule(path)
    entries = await storage.registry_entries()
    head = await storage.head()
    start = head.size if head is not None else 0
    statements = ((e.index, parse_statement(e.data)) for e in entries if not is_log_key(e.data))  # logkeys.py
    replayed = Registry.replay(registry_keys, statements, start)
    if not replayed.grandfathered:
        start = 0
    else:
        shown = ", ".join(f"#{i}" for i in replayed.grandfathered)
        log.warning(
            "registry: %d issuer-add entr%s logged before the name-ownership rule (%s) share a key name or label "
            "with another issuer; they stay as logged, and the rule applies from entry #%d on (recorded in %s)",
            len(replayed.grandfathered),
            "y" if len(replayed.grandfathered) == 1 else "ies",
            shown,
            start,
            path,
        )
    write_rule(path, start)
    return start


def read_rule(path: Path) -> int:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["names_owned_from"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"{path} is unreadable ({exc}): restore it from a backup") from None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise StorageError(f"{path}: names_owned_from must be an entry index: restore it from a backup")
    return value


def write_rule(path: Path, start: int) -> None:
    # One temporary file per process: with `[server] workers`, every process starts through here at once.
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"names_owned_from": start}) + "\n", encoding="utf-8")
    with temporary.open("rb") as file:
        os.fsync(file.fileno())
    temporary.replace(path)
