"""The issuer registry, derived only from the log (DESIGN.md "Statements").

Registry statements (`issuer-add`, `issuer-retire`), signed by one of the log's
registry keys, add and retire issuer keys; `issue` and `revoke` statements are
accepted only from a key that is active at that point of the log. Replaying the
log's entries in order through `Registry.apply` rebuilds the same state in the
log server (on start) and in any monitor, so nobody can add a key quietly.

Rules: a key is added once (a retired key cannot come back: retirement usually
means compromise); only an active key can be retired.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from tlogcore.errors import NotAllowedError
from tlogcore.statement import DOCUMENT_KINDS, ISSUER_ADD, ISSUER_RETIRE, Statement


@dataclass
class IssuerKey:
    vkey: str
    label: str | None  # the `ref` of the issuer-add statement: the issuer's display name
    added_index: int
    added_time: int
    retired_index: int | None = None
    retired_time: int | None = None
    retire_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.retired_index is None


@dataclass
class Registry:
    registry_keys: frozenset[str]  # vkeys allowed to sign registry statements
    keys: dict[str, IssuerKey] = field(default_factory=dict)

    def is_active(self, vkey: str) -> bool:
        key = self.keys.get(vkey)
        return key is not None and key.active

    def check(self, statement: Statement) -> None:
        """Raise NotAllowedError unless the statement may be logged now."""
        if statement.kind in DOCUMENT_KINDS:
            if statement.signer not in self.keys:
                raise NotAllowedError(f"issuer key {statement.signer_verifier.name} is not registered in this log")
            if not self.keys[statement.signer].active:
                raise NotAllowedError(f"issuer key {statement.signer_verifier.name} has been retired")
            return
        if statement.signer not in self.registry_keys:
            raise NotAllowedError("registry statements must be signed by the log's registry key")
        if statement.kind == ISSUER_ADD and statement.issuer in self.keys:
            raise NotAllowedError("this issuer key was already added (a retired key cannot be re-added)")
        if statement.kind == ISSUER_RETIRE and not self.is_active(statement.issuer or ""):
            raise NotAllowedError("only an active issuer key can be retired")

    def apply(self, statement: Statement, index: int) -> None:
        """Check, then record the statement logged at `index`."""
        self.check(statement)
        if statement.kind == ISSUER_ADD and statement.issuer is not None:
            self.keys[statement.issuer] = IssuerKey(statement.issuer, statement.ref, index, statement.time)
        elif statement.kind == ISSUER_RETIRE and statement.issuer is not None:
            key = self.keys[statement.issuer]
            key.retired_index, key.retired_time, key.retire_reason = index, statement.time, statement.reason

    @classmethod
    def replay(cls, registry_keys: Iterable[str], entries: Iterable[tuple[int, Statement]]) -> "Registry":
        registry = cls(frozenset(registry_keys))
        for index, statement in entries:
            registry.apply(statement, index)
        return registry
