"""A batch's registry rules, in log order (sequencer step 2): each request is all or nothing.

No storage and no futures here: the sequencer hands in the statements of each request, in log order, and gets
back the registry and key ring as they will be once the batch is committed, and which requests were refused.
The registry it is given is copied first: it becomes real only after the commit.
"""

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from logserver.logkeys import KeyRing
from tlogcore.errors import NotAllowedError
from tlogcore.indexroot import IndexRoot
from tlogcore.logkey import LogKeyRotation
from tlogcore.registry import Registry
from tlogcore.statement import DOCUMENT_KINDS, REGISTRY_KINDS, Statement

Entry = Statement | IndexRoot | LogKeyRotation


@dataclass
class RulesOutcome:
    registry: Registry
    keys: KeyRing | None
    refused: dict[int, NotAllowedError]  # request number (its place in the batch) -> why it was refused


def changes_rules(entries: Sequence[Entry]) -> bool:
    """Whether logging `entries` changes the registry or the key ring (what the next batch is checked against)."""
    return any(e.kind in REGISTRY_KINDS or isinstance(e, LogKeyRotation) for e in entries)


def apply_rules(
    requests: Sequence[Sequence[Entry]], first: int, registry: Registry, keys: KeyRing | None
) -> RulesOutcome:
    """The rules for `requests` logged from index `first` on, in order; a refused request takes no index and
    leaves the registry as it was before it."""
    registry = copy.deepcopy(registry)
    refused: dict[int, NotAllowedError] = {}
    index = first
    for number, entries in enumerate(requests):
        if all(isinstance(e, Statement) and e.kind in DOCUMENT_KINDS for e in entries):
            error = _check_documents(registry, entries)
            if error is None:
                index += len(entries)
            else:
                refused[number] = error
            continue
        before = copy.deepcopy(registry) if len(entries) > 1 and changes_rules(entries) else registry
        keys_before = keys
        try:
            for offset, entry in enumerate(entries):
                if isinstance(entry, Statement):  # an index-root is no registry matter
                    registry.apply(entry, index + offset)
                elif isinstance(entry, LogKeyRotation):
                    keys = _rotated(keys, entry, index + offset)
        except NotAllowedError as exc:
            registry, keys = before, keys_before
            refused[number] = exc
            continue
        index += len(entries)
    return RulesOutcome(registry, keys, refused)


def _check_documents(registry: Registry, entries: Sequence[Entry]) -> NotAllowedError | None:
    """Issue and revoke statements change nothing and are checked on their signer's key alone (Registry.check):
    each distinct key once, in order of first use, finds the same first refusal as one check per statement."""
    first_of_key: dict[str, Statement] = {}
    for entry in entries:
        if isinstance(entry, Statement):
            first_of_key.setdefault(entry.signer, entry)
    try:
        for statement in first_of_key.values():
            registry.check(statement)
    except NotAllowedError as exc:
        return exc
    return None


def _rotated(keys: KeyRing | None, rotation: LogKeyRotation, index: int) -> KeyRing:
    if keys is None:
        raise NotAllowedError("this log server was started without its key ring: it cannot rotate its key")
    return keys.extended(rotation, index)
