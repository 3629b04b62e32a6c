"""Keys reported stolen (issue 22): an `issuer-retire` with `unsafe-from N` (tlogcore/registry.py) says that from
entry N on the key may have been in a thief's hands. The registry already refuses what the key signs after its
retirement (entry R); the entries it signed in [N, R) were accepted, and audited, before anyone knew. So when a
monitor meets the marker it alerts once for the marker, then reads entries N..R-1 again (authenticated against the
checkpoint being audited) and alerts on each statement that key signed there: the documents to re-examine.

Rule name `issuer-key-stolen`, category `watch`: the log did nothing wrong; an issuer has something to clean up.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from monitor import alerts as A
from monitor.audit import Checked, parse_unsigned
from monitor.logcontext import LogContext, note_text, statement_json
from monitor.state import Signed
from tlogcore.errors import TlogError
from tlogcore.merkle import leaf_hash
from tlogcore.statement import ISSUER_RETIRE
from tlogcore.status import signed_while_unsafe
from tlogcore.tileauth import TreeMismatch, TreeView, bundle_of, level0_tiles
from tlogcore.tiles import TILE_WIDTH, Tile

RULE_STOLEN_KEY = "issuer-key-stolen"
FetchChunk = Callable[[TreeView, list[Tile], bytes], Awaitable[dict[str, bytes]]]


def markers(checked: Sequence[Checked]) -> list[tuple[int, str, int]]:
    """(retire index, key, unsafe-from) of each stolen-key marker among audited entries the registry accepted."""
    return [
        (item.index, item.statement.issuer or "", item.statement.unsafe_from)
        for item in checked
        if item.problem is None
        and item.statement is not None
        and item.statement.kind == ISSUER_RETIRE
        and item.statement.unsafe_from is not None
    ]


async def stolen_key_alerts(
    context: LogContext, view: TreeView, target: Signed, checked: Sequence[Checked], fetch_chunk: FetchChunk
) -> list[A.Alert]:
    """One alert per marker in `checked`, and one per entry the stolen key signed from its unsafe-from on."""
    out: list[A.Alert] = []
    for retired_at, key, unsafe_from in markers(checked):
        name = key.split("+", 1)[0]
        out.append(
            context.alert(
                RULE_STOLEN_KEY,
                A.WATCH,
                f"marker {retired_at}",
                f"entry {retired_at}: issuer key {name} was retired as stolen, unsafe from entry {unsafe_from}; "
                "what it signed from then on is flagged to verifiers",
                {"index": retired_at, "key": key, "unsafe_from": unsafe_from, "checkpoint": note_text(target.note)},
            )
        )
        for index, data in await _entries(context, view, target, (unsafe_from, retired_at), fetch_chunk):
            alert = _signed_while_unsafe(context, target, index, data, key, unsafe_from)
            if alert is not None:
                out.append(alert)
    return out


async def _entries(
    context: LogContext, view: TreeView, target: Signed, span: tuple[int, int], fetch_chunk: FetchChunk
) -> list[tuple[int, bytes]]:
    """Entries [start, end), read again from the log and checked against the tree of `target`."""
    start, end = span
    tiles = level0_tiles(start, end, target.size)
    if not tiles:
        return []
    bundles = await fetch_chunk(view, tiles, target.note)
    found: list[tuple[int, bytes]] = []
    for tile in tiles:
        try:
            entries = view.entries(tile, bundles[bundle_of(tile).path])
        except TreeMismatch as exc:
            raise context.mismatch(exc, target.note) from None
        first = tile.index * TILE_WIDTH
        found += [(first + i, e) for i, e in enumerate(entries) if start <= first + i < end]
    view.drop(tiles)  # read once for this check: keep memory flat over a long unsafe span
    return found


def _signed_while_unsafe(
    context: LogContext, target: Signed, index: int, data: bytes, key: str, unsafe_from: int
) -> A.Alert | None:
    try:
        statement = parse_unsigned(data)  # audited already: its signature was checked when it was first read
    except TlogError:
        return None
    if statement.signer != key or not signed_while_unsafe(statement.signer, index, {key: unsafe_from}):
        return None
    about = f"document {statement.document.hex()}" if statement.document is not None else statement.kind
    evidence: dict[str, Any] = {
        "index": index,
        "leaf_hash": leaf_hash(data).hex(),
        "statement": statement_json(statement),
        "unsafe_from": unsafe_from,
        "checkpoint": note_text(target.note),
    }
    return context.alert(
        RULE_STOLEN_KEY,
        A.WATCH,
        f"entry {index} {leaf_hash(data).hex()}",
        f"entry {index}: {statement.kind} of {about} signed by {key.split('+', 1)[0]} after the key was reported "
        f"stolen (unsafe from entry {unsafe_from}): it may not be the issuer's",
        evidence,
    )
