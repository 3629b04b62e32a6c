"""The watch rules' expected documents, read from where each issuer keeps them, and reloaded without a restart.

A source is a file (one hex SHA-256 per line), a directory of such files
(every regular file not starting with '.', recursively), or a command whose
standard output is such lines. Files are re-read when their modification time,
size or the set of files changes (checked on every `refresh`); commands run at
start, on `refresh(force=True)` (SIGHUP, and before any "unexpected" alert is
raised, so an issuer that lists a document just before logging it is never
reported), and on nothing else.
"""

import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.config import WatchRule
from monitor.rules import parse_expected
from tlogcore.errors import MalformedError

log = logging.getLogger("monitor.expected")
MAX_SOURCE_BYTES = 256 * 1024 * 1024
COMMAND_TIMEOUT = 60.0


class ExpectedError(Exception):
    """An expected-documents source could not be read or parsed."""


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [path]


def _stamp(path: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in _files(path))
    except OSError as exc:
        raise ExpectedError(f"expected documents {path}: {exc.strerror}") from None


def read_source(rule: WatchRule) -> frozenset[bytes] | None:
    """The rule's expected documents now; None when the rule lists none (every use of the key matches)."""
    if rule.expected is not None:
        found: set[bytes] = set()
        for path in _files(rule.expected):
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise ExpectedError(f"expected documents {path}: {exc.strerror}") from None
            found |= _parse(data, str(path))
        return frozenset(found)
    if rule.expected_command is not None:
        try:
            done = subprocess.run(
                list(rule.expected_command),
                capture_output=True,
                timeout=COMMAND_TIMEOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ExpectedError(f"rule {rule.name}: expected_command failed: {exc}") from None
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace").strip()[:200]
            raise ExpectedError(f"rule {rule.name}: expected_command exited with {done.returncode}: {error}")
        return frozenset(_parse(done.stdout, f"rule {rule.name} expected_command output"))
    return None


def _parse(data: bytes, where: str) -> frozenset[bytes]:
    if len(data) > MAX_SOURCE_BYTES:
        raise ExpectedError(f"{where} is larger than {MAX_SOURCE_BYTES} bytes")
    try:
        return parse_expected(data.decode("utf-8"), where)
    except UnicodeDecodeError:
        raise ExpectedError(f"{where} is not UTF-8") from None
    except MalformedError as exc:
        raise ExpectedError(str(exc)) from None


@dataclass
class Watchlist:
    """The rules in force and their expected documents; `replace` swaps in new rules (SIGHUP)."""

    rules: tuple[WatchRule, ...] = ()
    expected: dict[str, frozenset[bytes] | None] = field(default_factory=dict)
    _stamps: dict[str, tuple[tuple[str, int, int], ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, rules: Sequence[WatchRule]) -> "Watchlist":
        """Read every source now; raises ExpectedError (the caller decides whether that is fatal)."""
        watchlist = cls(tuple(rules))
        for rule in rules:
            watchlist._read(rule)
        return watchlist

    def _read(self, rule: WatchRule) -> None:
        if rule.expected is not None:
            self._stamps[rule.name] = _stamp(rule.expected)
        self.expected[rule.name] = read_source(rule)

    def refresh(self, force: bool = False) -> list[str]:
        """Re-read sources that changed (all of them, commands included, with `force`). A source that fails
        keeps its previous list; the errors are returned, one line each."""
        errors = []
        for rule in self.rules:
            try:
                if rule.expected is not None and (force or _stamp(rule.expected) != self._stamps.get(rule.name)):
                    self._read(rule)
                    log.info(
                        "watch rule %s: reloaded %d expected documents", rule.name, len(self.expected[rule.name] or ())
                    )
                elif rule.expected_command is not None and force:
                    self._read(rule)
            except ExpectedError as exc:
                errors.append(str(exc))
        return errors

    def replace(self, rules: Sequence[WatchRule]) -> None:
        """New rules from a reloaded config; raises ExpectedError and keeps the old ones if a source fails."""
        fresh = Watchlist.load(rules)
        self.rules, self.expected, self._stamps = fresh.rules, fresh.expected, fresh._stamps
