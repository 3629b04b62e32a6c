"""The issuer registry, derived only from the log (DESIGN.md "Statements").

Registry statements (`issuer-add`, `issuer-retire`), signed by one of the log's
registry keys, add and retire issuer keys; `issue` and `revoke` statements are
accepted only from a key that is active at that point of the log. Replaying the
log's entries in order through `Registry.apply` rebuilds the same state in the
log server (on start) and in any monitor, so nobody can add a key quietly.

Rules: a key is added once (a retired key cannot come back: retirement usually
means compromise); only an active key can be retired.

Issuer identity belongs to the registry, not to a key's self-chosen name. A key
name, and a label (the issuer's display name), belong to the first issuer that
registered them: an `issuer-add` for a name or label another issuer holds is
refused, naming the holder. A new key for the same issuer (rotation) is an
`issuer-add` that says which registered key it `continues`; it may reuse that
issuer's name and label. The continuation also lets the new key revoke what the
old one issued (tlogcore/status.py). Retiring a key stops it writing; what it
issued before stays issued (retire is not revoke).

A key reported stolen is retired with `unsafe-from N`: from log index N on, whoever
signed with it may not have been the issuer, so what it signed at N or later is
flagged (tlogcore/status.py, `signed_while_unsafe`); what it signed before N stays
valid. N cannot precede the key's own registration.

A log made before the ownership rule may already hold `issuer-add` entries that
break it. They stay as logged: replay with `names_owned_from` lets an entry below
that index through (listed in `grandfathered`) and applies the rule from it on;
the log server records the index once (logserver/registryrule.py).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from tlogcore.errors import NotAllowedError
from tlogcore.statement import DOCUMENT_KINDS, ISSUER_ADD, ISSUER_RETIRE, Statement


class NameHeldError(NotAllowedError):
    """An `issuer-add` for a key name or label another issuer holds (the ownership rule)."""


@dataclass
class IssuerKey:
    vkey: str
    label: str | None  # the `ref` of the issuer-add statement: the issuer's display name
    added_index: int
    added_time: int
    retired_index: int | None = None
    retired_time: int | None = None
    retire_reason: str | None = None
    continues: str | None = None  # the vkey this key continues (rotation), from its issuer-add
    unsafe_from: int | None = None  # reported stolen: entries it signed at this index or later are flagged

    @property
    def active(self) -> bool:
        return self.retired_index is None


@dataclass
class Registry:
    registry_keys: frozenset[str]  # vkeys allowed to sign registry statements
    keys: dict[str, IssuerKey] = field(default_factory=dict)
    names_owned_from: int = 0  # the ownership rule applies to entries from this index on
    grandfathered: list[int] = field(default_factory=list)  # issuer-add entries below it that break the rule

    def snapshot(self) -> "Registry":
        """A copy that later `apply` calls leave as it is (each key is copied: retiring one changes it in place)."""
        keys = {vkey: replace(key) for vkey, key in self.keys.items()}
        return Registry(self.registry_keys, keys, self.names_owned_from, list(self.grandfathered))

    def continuations(self) -> dict[str, str]:
        """Each rotated key -> the key it continues: what the status rule needs (tlogcore/status.py)."""
        return {k.vkey: k.continues for k in self.keys.values() if k.continues is not None}

    def unsafe_from(self) -> dict[str, int]:
        """Each key reported stolen -> the first log index from which its signatures are not to be trusted."""
        return {k.vkey: k.unsafe_from for k in self.keys.values() if k.unsafe_from is not None}

    def issuer_of(self, vkey: str) -> str:
        """The issuer a registered key belongs to: the first key of its chain of continuations."""
        seen = {vkey}
        while (before := self.keys[vkey].continues) is not None and before not in seen:
            vkey = before
            seen.add(vkey)
        return vkey

    def holder(self, name: str, label: str | None) -> IssuerKey | None:
        """A registered key that holds this key name, or (when given) this label, whoever's issuer it is."""
        folded = label.casefold() if label is not None else None
        for key in self.keys.values():
            if key.vkey.split("+", 1)[0] == name or (folded is not None and (key.label or "").casefold() == folded):
                return key
        return None

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
        if statement.kind == ISSUER_ADD:
            self._check_add(statement.issuer or "", statement.ref, statement.continues)
        if statement.kind == ISSUER_RETIRE and not self.is_active(statement.issuer or ""):
            raise NotAllowedError("only an active issuer key can be retired")
        if statement.kind == ISSUER_RETIRE and statement.unsafe_from is not None:
            added = self.keys[statement.issuer or ""].added_index
            if statement.unsafe_from < added:
                raise NotAllowedError(
                    f"unsafe-from {statement.unsafe_from} is before the key was registered (entry {added}): "
                    f"give {added} to flag everything it signed"
                )

    def _check_add(self, vkey: str, label: str | None, continues: str | None) -> None:
        if vkey in self.keys:
            raise NotAllowedError("this issuer key was already added (a retired key cannot be re-added)")
        if continues is not None and continues not in self.keys:
            raise NotAllowedError(f"the key it continues, {continues}, is not registered in this log")
        holder = self.holder(vkey.split("+", 1)[0], label)
        if holder is None:
            return
        if continues is not None and self.issuer_of(holder.vkey) == self.issuer_of(continues):
            return  # the same issuer's new key may keep its name and label
        held_by = f"{holder.label!r} (key {holder.vkey})" if holder.label else f"key {holder.vkey}"
        raise NameHeldError(
            f"key name {vkey.split('+', 1)[0]!r} or label {label!r} is already held by issuer {held_by}; "
            "a new key for that issuer must say which of its keys it continues"
        )

    def apply(self, statement: Statement, index: int) -> None:
        """Check, then record the statement logged at `index`."""
        try:
            self.check(statement)
        except NameHeldError:
            if index >= self.names_owned_from:
                raise
            self.grandfathered.append(index)  # logged before the ownership rule: it stays as it is
        if statement.kind == ISSUER_ADD and statement.issuer is not None:
            key = IssuerKey(statement.issuer, statement.ref, index, statement.time, continues=statement.continues)
            self.keys[statement.issuer] = key
        elif statement.kind == ISSUER_RETIRE and statement.issuer is not None:
            key = self.keys[statement.issuer]
            key.retired_index, key.retired_time, key.retire_reason = index, statement.time, statement.reason
            key.unsafe_from = statement.unsafe_from

    @classmethod
    def replay(
        cls, registry_keys: Iterable[str], entries: Iterable[tuple[int, Statement]], names_owned_from: int = 0
    ) -> "Registry":
        registry = cls(frozenset(registry_keys), names_owned_from=names_owned_from)
        for index, statement in entries:
            registry.apply(statement, index)
        return registry
