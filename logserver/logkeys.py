"""The log's signing keys across rotations (docs/thirty-years.md, "Log key rotation"; tlogcore/logkey.py).

`log.key` stays the key the log started with (the identity `init` recorded); the key the n-th rotation hands over
to is `log.key.<n>` beside it. Which keys sign a checkpoint of size s is `tlogcore.logkey.key_rule` over the
`tlog-log-key/v1` entries the log holds: the sequencer signs with the key s calls for and, during an overlap, with
the old key too.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tlogcore.errors import NotAllowedError, TlogError
from tlogcore.keys import Signer, Verifier
from tlogcore.logkey import LogKeyRotation, is_log_key, key_rule, parse_log_key_rotation


def successor_key_path(data: Path, number: int) -> Path:
    """Where the private key of the log's `number`-th rotation (1, 2, …) is kept: beside log.key."""
    return data / f"log.key.{number}"


@dataclass(frozen=True)
class KeyRing:
    """The log's first key, its successors' private keys, and the rotations the log holds (in log order)."""

    first: Signer
    registry_vkey: str
    successors: tuple[Signer, ...] = ()  # successors[n-1] is log.key.<n>
    rotations: tuple[LogKeyRotation, ...] = ()

    def signer_of(self, vkey: str) -> Signer:
        for signer in (self.first, *self.successors):
            if signer.verifier().vkey == vkey:
                return signer
        raise NotAllowedError(f"this server does not hold the private key of {vkey} (log.key.<n> in --data)")

    def signers(self, size: int) -> list[Signer]:
        """The keys that sign the checkpoint of `size`: the one the rotations call for first, then the old one."""
        rule = key_rule(self.first.verifier().vkey, self.rotations, size)
        rest = sorted(rule.allowed - {rule.required})
        return [self.signer_of(rule.required), *(self.signer_of(vkey) for vkey in rest)]

    def verifiers(self) -> list[Verifier]:
        """Every key this log has signed with (the key guard and the audits accept any of them)."""
        return [self.first.verifier(), *(s.verifier() for s in self.successors)]

    @property
    def current(self) -> str:
        """The key of the newest rotation (or the first key): the `old` of the next rotation."""
        return self.rotations[-1].new if self.rotations else self.first.verifier().vkey

    def extended(self, rotation: LogKeyRotation, index: int) -> "KeyRing":
        """The ring once `rotation` is logged at `index`; NotAllowedError if the log must refuse it."""
        if rotation.origin != self.first.name:
            raise NotAllowedError(f"log-key statement is for log {rotation.origin!r}, not this one")
        if rotation.old != self.current:
            raise NotAllowedError(
                f"log-key statement hands over from {rotation.old}, but this log signs with {self.current}"
            )
        if rotation.registry != self.registry_vkey:
            raise NotAllowedError("log-key statement is not confirmed by this log's registry key")
        if rotation.start <= index:  # the first tree holding it must already be signed by the new key
            raise NotAllowedError(f"log-key statement says from {rotation.start}, but it would be entry {index}")
        if self.rotations and index < self.rotations[-1].until:
            raise NotAllowedError("a log-key rotation is still in its overlap: rotate again after it ends")
        ring = replace(self, rotations=(*self.rotations, rotation))
        ring.signer_of(rotation.new)
        return ring

    def replayed(self, datas: Sequence[tuple[int, bytes]]) -> "KeyRing":
        """The ring after the `tlog-log-key/v1` entries (index, bytes) the log already holds, in log order."""
        ring = replace(self, rotations=())
        for index, data in datas:
            try:
                rotation = parse_log_key_rotation(data)
            except TlogError as exc:  # logged, so checked when it was: a damaged database (serve says so in a line)
                raise NotAllowedError(f"the log-key entry {index} does not verify: {exc}") from None
            ring = ring.extended(rotation, index)
        return ring


def announced_keys(datas: Sequence[bytes]) -> list[Verifier]:
    """The new keys of the `tlog-log-key/v1` entries among `datas` (each statement's signatures checked)."""
    return [parse_log_key_rotation(data).new_verifier for data in datas if is_log_key(data)]


def successor_paths(data: Path) -> list[Path]:
    """The successor key files present in `data`, in rotation order (log.key.1, log.key.2, … without a gap)."""
    found: list[Path] = []
    while successor_key_path(data, len(found) + 1).exists():
        found.append(successor_key_path(data, len(found) + 1))
    return found
