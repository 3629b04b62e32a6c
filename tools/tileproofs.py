"""Proofs computed from the log's tiles instead of its proof API: the static read path (a CDN or a plain file
server can carry it), with every tile authenticated against the checkpoint before a hash is used
(tlogcore.tileauth). For `tlog proof ... --from-tiles`."""

from logserver.client import LogClient
from tlogcore import merkle
from tlogcore.errors import MalformedError, ProofError
from tlogcore.tileauth import TreeMismatch, TreeView


async def proof_from_tiles(client: LogClient, size: int, root: bytes, plan: merkle.HashPlan) -> list[bytes]:
    """The hashes `plan` names, read from tiles that hash up to (size, root); ProofError if they do not."""
    view = TreeView(size, root)
    bodies = {}
    for tile in view.missing(view.tiles_for_nodes(plan.nodes)):
        body = await client.tile(tile.path)
        if body is None:
            raise MalformedError(f"the log does not serve {tile.path} for its tree of size {size}")
        bodies[tile.path] = body
    try:
        view.add(bodies)
    except TreeMismatch as exc:
        raise ProofError(f"the log's tiles do not match its checkpoint: {exc}") from None
    return view.assemble(plan)
