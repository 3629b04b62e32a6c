"""A document's status proof read straight from the stored pages on its path (tlogcore/statuspageproof.py, the
server's lookups): the same record and proof as PathPlan.lookup and the reference, for present documents, absent
ones (ending in an empty subtree or at another document's leaf), paths deeper than the pages given, and damaged
pages."""

import hashlib
import random

import pytest
import statusindex_reference as ref
from test_statusindex_pages import PagedRows
from test_statusindex_reference import clustered_key, random_batch

from tlogcore.errors import MalformedError, ProofError
from tlogcore.statusindex import ABSENT_EMPTY, ABSENT_OTHER_LEAF, EMPTY, KEY_BITS, PRESENT, key_int, verify_status
from tlogcore.statusindex_nodes import IndexStorageError, Interior, NodeId, PathPlan
from tlogcore.statusindex_pages import STRIDE, Page, page_of, position_of, raw_node
from tlogcore.statuspageproof import PREFIX_DEPTH, Prefixes, path_page_ids, path_proof
from tlogcore.statusrecord import new_record


def grown(seed: int, batches: int = 12) -> tuple[PagedRows, dict[bytes, bytes], bytes]:
    rng = random.Random(seed)
    paged, known = PagedRows(), dict[bytes, bytes]()
    base = rng.randbytes(32)
    for _ in range(batches):
        batch = random_batch(rng, known, base)
        paged.write(paged.read(PathPlan(batch, size_hint=len(known))).apply(batch).writes)
        known.update({key: record.to_bytes() for key, record in batch.items()})
    return paged, known, base


def probes(rng: random.Random, known: dict[bytes, bytes], base: bytes) -> list[bytes]:
    """Present keys, random absent ones, and absent ones that share a long prefix with present ones."""
    return (
        rng.sample(sorted(known), 8)
        + [rng.randbytes(32) for _ in range(8)]
        + [clustered_key(rng, base) for _ in range(8)]
    )


@pytest.mark.parametrize("seed", range(6))
def test_a_proof_read_from_the_pages_is_the_plans_and_the_references(seed: int) -> None:
    paged, known, base = grown(seed)
    rng = random.Random(seed)
    keys = probes(rng, known, base)
    plan = paged.read(PathPlan(keys, size_hint=len(known)))
    kinds = set()
    for key in keys:
        found = path_proof(key, paged.pages(set(path_page_ids(key, 0, KEY_BITS + 1))))
        assert not isinstance(found, int)
        record, proof = found
        assert found == plan.lookup(key)
        assert proof.to_bytes() == ref.proof(known, key)
        assert (record.to_bytes() if record is not None else None) == known.get(key)
        verify_status(key, record, proof.to_bytes(), ref.root(known))
        kinds.add(proof.kind)
    assert kinds == {PRESENT, ABSENT_EMPTY, ABSENT_OTHER_LEAF}  # every kind of answer was met


@pytest.mark.parametrize("seed", range(3))
def test_a_path_past_the_pages_given_says_where_to_read_on(seed: int) -> None:
    """Given the pages down to some depth only, the answer is the depth of the first page missing on the path
    (the reader reads on from there), or the whole proof if the path ended above it."""
    paged, known, base = grown(seed)
    rng = random.Random(seed)
    for key in probes(rng, known, base):
        whole = path_proof(key, paged.pages(set(path_page_ids(key, 0, KEY_BITS + 1))))
        assert not isinstance(whole, int)
        proof = whole[1]
        last_read = proof.depth - 1 if proof.kind == ABSENT_EMPTY else proof.depth  # the deepest node on the path
        for end in range(0, 40, STRIDE):
            found = path_proof(key, paged.pages(set(path_page_ids(key, 0, end))))
            assert found == (whole if last_read < end else end)


def test_an_empty_index_proves_every_key_absent() -> None:
    key = bytes(range(32))
    assert path_page_ids(key, 0, 9) == [(0, 0), (4, 0), (8, 0)]
    found = path_proof(key, {(0, 0): {}})
    assert not isinstance(found, int)
    assert found[0] is None and found[1].to_bytes() == ref.proof({}, key)
    assert path_proof(key, {(0, 0): {}}, ref.root({})) == found  # checked against the empty tree's root
    with pytest.raises(ProofError):  # an index emptied under a root that names documents
        path_proof(key, {(0, 0): {}}, ref.leaf(key, b"r"))


def without_a_path_node(pages: dict[NodeId, Page], key: bytes) -> list[dict[NodeId, Page]]:
    """Copies of a present key's pages, each without one node of its path below the root (each named by its
    parent)."""
    copies, bits = [], key_int(key)
    for depth in range(1, KEY_BITS + 1):
        node = (depth, bits >> (KEY_BITS - depth))
        if position_of(node) not in pages.get(page_of(node), {}):
            return copies
        copy = {page: dict(nodes) for page, nodes in pages.items()}
        del copy[page_of(node)][position_of(node)]
        copies.append(copy)
    return copies


@pytest.mark.parametrize("seed", range(3))
def test_a_node_missing_on_the_path_or_a_bad_record_is_damage(seed: int) -> None:
    paged, known, _ = grown(seed)
    for key in random.Random(seed).sample(sorted(known), 4):
        pages = paged.pages(set(path_page_ids(key, 0, KEY_BITS + 1)))
        copies = without_a_path_node(pages, key)
        assert copies  # the path crosses nodes below the root
        for copy in copies:
            with pytest.raises(IndexStorageError):
                path_proof(key, copy)
        leaf_page = next(page for page in pages.values() if any(raw[0] and raw[1][:32] == key for raw in page.values()))
        position = next(p for p, raw in leaf_page.items() if raw[0] and raw[1][:32] == key)
        leaf_page[position] = (True, key + b"\xff")  # a record that does not parse
        with pytest.raises(MalformedError):
            path_proof(key, pages)


def test_an_interior_node_with_an_empty_side_ends_the_path_there() -> None:
    """A key whose side of an interior node is EMPTY is absent there, whatever lies below (nothing is read)."""
    other = bytes(32)
    key = b"\x80" + bytes(31)  # parts from `other` at bit 0
    page: Page = {position_of((0, 0)): raw_node(Interior(ref.leaf(other, b"r"), EMPTY))}
    found = path_proof(key, {(0, 0): page})
    assert not isinstance(found, int)
    assert found[0] is None and found[1].kind == ABSENT_EMPTY and found[1].siblings == (ref.leaf(other, b"r"),)


REFUSED = "refused"  # damage (MalformedError) or a proof of another tree (ProofError): the lookup catches both


def checked(key: bytes, pages: dict[NodeId, Page], root: bytes) -> object:
    """What the walk that checks against `root` gives: the found proof, or REFUSED."""
    try:
        return path_proof(key, pages, root)
    except (MalformedError, ProofError):
        return REFUSED


def unchecked_then_verified(key: bytes, pages: dict[NodeId, Page], root: bytes) -> object:
    """What the walk gave before it checked as it went: the walk, then verify_status on the proof's bytes."""
    try:
        found = path_proof(key, pages)
        assert not isinstance(found, int)
        verify_status(key, found[0], found[1].to_bytes(), root)
    except (MalformedError, ProofError):
        return REFUSED
    return found


def mutated(pages: dict[NodeId, Page], rng: random.Random) -> dict[NodeId, Page]:
    """A copy of the pages with one byte of one stored node changed (its position's bytes, leaf or interior)."""
    copy = {page: dict(nodes) for page, nodes in pages.items()}
    page = rng.choice(sorted(page for page, nodes in copy.items() if nodes))
    position = rng.choice(sorted(copy[page]))
    is_leaf, body = copy[page][position]
    at = rng.randrange(len(body))
    copy[page][position] = (is_leaf, body[:at] + bytes([body[at] ^ rng.randrange(1, 256)]) + body[at + 1 :])
    return copy


@pytest.mark.parametrize("seed", range(4))
def test_the_walk_checked_against_the_root_accepts_what_verify_status_accepts(seed: int) -> None:
    """The server checks a proof as it walks it (one SHA-256 per node it reads) instead of verify_status on the
    proof's bytes: on the rows as stored and on rows with any one byte changed, the two agree, proof for proof."""
    paged, known, base = grown(seed)
    rng = random.Random(seed)
    root = ref.root(known)
    outcomes = set()
    for key in probes(rng, known, base):
        pages = paged.pages(set(path_page_ids(key, 0, KEY_BITS + 1)))
        assert checked(key, pages, root) == unchecked_then_verified(key, pages, root)
        assert checked(key, pages, rng.randbytes(32)) == REFUSED  # another tree's root
        for _ in range(60):
            copy = mutated(pages, rng)
            outcome = checked(key, copy, root)
            assert outcome == unchecked_then_verified(key, copy, root)
            outcomes.add(REFUSED if outcome == REFUSED else "served")
    assert outcomes == {"served", REFUSED}  # a change off the path is served, as before


def consistent(leaves: dict[int, bytes], interior: set[int]) -> tuple[dict[NodeId, Page], bytes]:
    """One page (the top): leaves (key || record) at their positions, and interior nodes whose halves are their
    children's hashes; and the root it all hashes to: a tree whose hashes agree, however wrong its shape."""
    nodes: Page = {position: (True, body) for position, body in leaves.items()}

    def hash_at(position: int) -> bytes:
        if position in interior:
            body = hash_at(2 * position) + hash_at(2 * position + 1)
            nodes[position] = (False, body)
            return hashlib.sha256(b"\x11" + body).digest()
        return ref.leaf(leaves[position][:32], leaves[position][32:]) if position in leaves else EMPTY

    return {(0, 0): nodes}, hash_at(1)


def test_a_tree_whose_hashes_agree_but_whose_shape_no_verifier_accepts_is_not_served() -> None:
    """Rows tampered with care (every hash recomputed up to a new root) can still make a proof no verifier
    accepts; the checked walk refuses what verify_status would: a path going on below an empty sibling, and an
    other leaf that is not under the key's prefix."""
    key, record = bytes(32), new_record([7]).to_bytes()
    near = b"\x20" + bytes(31)  # shares the key's first 2 bits, not its third
    far = b"\x80" + bytes(31)  # parts from the key at bit 0
    below_empty = consistent({4: near + record, 3: far + record}, {1, 2})  # position 5 (depth 2) is empty
    off_prefix = consistent({2: far + record, 3: near + record}, {1})  # the key's side holds `far`
    for pages, root in (below_empty, off_prefix):
        assert unchecked_then_verified(key, pages, root) == REFUSED  # what a verifier would say
        with pytest.raises(ProofError):
            path_proof(key, pages, root)
    as_built = consistent({4: near + record, 5: bytes([0x10]) + bytes(31) + record, 3: far + record}, {1, 2})
    assert checked(key, *as_built) == unchecked_then_verified(key, *as_built) != REFUSED  # the same shape, whole


def kept_prefix_of(key: bytes) -> int:
    return key_int(key) >> (KEY_BITS - PREFIX_DEPTH)


@pytest.mark.parametrize("seed", range(4))
def test_a_walk_from_a_kept_path_top_gives_the_same_proof_and_refuses_the_same_damage_below(seed: int) -> None:
    """A server keeps the tops of the paths it walked at one version (statuspageproof.Prefixes): a walk under a
    kept prefix starts at PREFIX_DEPTH. Its proof is the whole walk's, damage below the top is refused as the whole
    walk refuses it, and above the top it serves what was checked against the root when the top was kept."""
    paged, known, base = grown(seed)
    rng = random.Random(seed)
    root = ref.root(known)
    prefixes: Prefixes = {}
    keys = probes(rng, known, base)
    pages_of = {key: paged.pages(set(path_page_ids(key, 0, KEY_BITS + 1))) for key in keys}
    for key in keys:  # the first walks go from the root, and keep the tops of the paths reaching PREFIX_DEPTH
        assert path_proof(key, pages_of[key], root, prefixes) == path_proof(key, pages_of[key], root)
    deep = [key for key in keys if kept_prefix_of(key) in prefixes]
    assert deep and len(deep) < len(keys)  # some paths reach the depth, some end above it
    for key in deep:
        pages = pages_of[key]
        assert path_proof(key, pages, root, prefixes) == path_proof(key, pages, root)
        for _ in range(40):
            copy = mutated({page: nodes for page, nodes in pages.items() if page[0] >= PREFIX_DEPTH}, rng)
            copy.update({page: nodes for page, nodes in pages.items() if page[0] < PREFIX_DEPTH})
            assert checked_from_top(key, copy, root, prefixes) == checked(key, copy, root)
        # the pages above the top are not read again: the root's page gone, the kept top still gives the proof
        above_gone = {page: nodes for page, nodes in pages.items() if page[0] >= PREFIX_DEPTH}
        assert path_proof(key, above_gone, root, prefixes) == path_proof(key, pages, root)
        assert path_proof(key, above_gone, root) == 0  # a walk from the root needs the root's page


def checked_from_top(key: bytes, pages: dict[NodeId, Page], root: bytes, prefixes: Prefixes) -> object:
    try:
        return path_proof(key, pages, root, dict(prefixes))
    except (MalformedError, ProofError):
        return REFUSED


def test_a_path_top_is_kept_only_from_a_walk_checked_against_the_root() -> None:
    """No top is kept from a walk that is not checked (no root given) or whose root the nodes do not hash to, nor
    from one that fails above PREFIX_DEPTH; a failure below it keeps the top checked on the way down."""
    paged, known, base = grown(0)
    root = ref.root(known)
    deep = [key for key in probes(random.Random(0), known, base) if path_proof_depth(paged, key, root) > PREFIX_DEPTH]
    assert deep
    key = deep[0]
    pages = paged.pages(set(path_page_ids(key, 0, KEY_BITS + 1)))
    unchecked: Prefixes = {}
    path_proof(key, pages, None, unchecked)
    wrong: Prefixes = {}
    with pytest.raises(ProofError):
        path_proof(key, pages, hashlib.sha256(b"another tree").digest(), wrong)
    assert unchecked == wrong == {}
    cut: Prefixes = {}
    below = {page: nodes for page, nodes in pages.items() if page[0] <= PREFIX_DEPTH}  # the path's end missing
    assert path_proof(key, below, root, cut) == PREFIX_DEPTH + STRIDE  # read on from there
    assert list(cut) == [kept_prefix_of(key)]


def path_proof_depth(paged: PagedRows, key: bytes, root: bytes) -> int:
    found = path_proof(key, paged.pages(set(path_page_ids(key, 0, KEY_BITS + 1))), root)
    assert not isinstance(found, int)
    return found[1].depth
