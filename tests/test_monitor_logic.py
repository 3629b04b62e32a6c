"""The monitor's pure parts: tiles authenticated against a root (and every mutation caught), entry checks,
watch rules, expected lists, alert ids, split-view verdicts, config parsing, progress lines."""

import asyncio
import contextlib
import io
import tomllib
from concurrent.futures import Executor
from pathlib import Path

import pytest
from monitor_faults import StaticTree

from monitor.alerts import MISBEHAVIOUR, WATCH, Alert, alert_id
from monitor.audit import Checked, Tally, apply_registry, check_statements, parse_unsigned
from monitor.checkstages import Checker
from monitor.config import WatchRule, config_from_toml
from monitor.modes import PARSE, SIGNATURES, TREE
from monitor.processes import process_pool
from monitor.progress import Progress
from monitor.rules import (
    ISSUER_ADDED,
    ISSUER_RETIRED,
    REVOCATION,
    UNEXPECTED,
    match_all,
    match_chunk,
    match_rule,
    parse_expected,
)
from monitor.splitview import open_witness_checkpoint, proof_conflict, same_size_conflict
from monitor.state import Signed
from tlogcore import merkle
from tlogcore.checkpoint import Checkpoint
from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.errors import MalformedError, TlogError
from tlogcore.keys import Ed25519Signer
from tlogcore.note import Note, Signature, sign_note
from tlogcore.policy import parse_policy
from tlogcore.registry import Registry
from tlogcore.statement import ISSUE, ISSUER_ADD, ISSUER_RETIRE, REVOKE, Statement, parse_statement, sign_statement
from tlogcore.tileauth import TreeMismatch, TreeView, bundle_of, level0_tiles, partial_tiles
from tlogcore.tiles import Tile

REPO = Path(__file__).resolve().parent.parent
ORIGIN = "log.example.test/monitor"
LOG_KEY = Ed25519Signer(ORIGIN, b"\x01" * 32)
REGISTRY = Ed25519Signer(ORIGIN + "/registry", b"\x02" * 32)
ISSUER = Ed25519Signer("moeys.example", b"\x03" * 32)
THIEF = Ed25519Signer("thief.example", b"\x04" * 32)


def entries(count: int, tag: bytes = b"e") -> list[bytes]:
    return [b"%s %d" % (tag, i) for i in range(count)]


def authenticate_all(tree: StaticTree, view: TreeView, start: int = 0) -> list[bytes]:
    tiles = level0_tiles(start, tree.size, tree.size)
    need = view.missing(tiles)
    view.add({t.path: tree.body(t.path) or b"" for t in need})
    out: list[bytes] = []
    for tile in tiles:
        out += view.entries(tile, tree.body(bundle_of(tile).path) or b"")
    return out


@pytest.mark.parametrize("size", [1, 2, 7, 255, 256, 257, 511, 512, 513, 65535, 65536, 65537, 70_000])
def test_every_entry_authenticates_and_old_roots_are_recomputed(size: int) -> None:
    tree = StaticTree(ORIGIN, LOG_KEY, entries(size))
    view = TreeView(tree.size, tree.root)
    assert authenticate_all(tree, view) == tree.entries
    for old in {0, 1, size // 3, size - 1, size}:
        plan = merkle.root_plan(old)
        want = plan.assemble([tree.stored[i] for i in plan.stored_indexes])[0] if old else merkle.EMPTY_ROOT
        assert view.old_root(old) == want
    for index in {0, size // 2, size - 1}:
        plan = merkle.inclusion_plan(index, size)
        view.add({t.path: tree.body(t.path) or b"" for t in view.missing(view.tiles_for_nodes(plan.nodes))})
        merkle.verify_inclusion(merkle.leaf_hash(tree.entries[index]), index, size, view.assemble(plan), tree.root)


def test_only_the_tiles_a_new_range_needs_are_asked_for() -> None:
    tree = StaticTree(ORIGIN, LOG_KEY, entries(70_000))
    view = TreeView(tree.size, tree.root)
    need = view.missing(level0_tiles(69_000, 70_000, tree.size))
    # 4 level-0 tiles + their level-1 parent and the level-1/level-2 partial tiles, not the 273 level-0 tiles.
    assert sorted(t.path for t in need) == sorted(
        [
            "tile/0/269",
            "tile/0/270",
            "tile/0/271",
            "tile/0/272",
            "tile/0/273.p/112",
            "tile/1/001.p/17",
            "tile/2/000.p/1",
        ]
    )
    assert [t.path for t in partial_tiles(70_000)] == ["tile/2/000.p/1", "tile/1/001.p/17", "tile/0/273.p/112"]


def flip(body: bytes, at: int) -> bytes:
    at %= len(body)
    return body[:at] + bytes([body[at] ^ 0x20]) + body[at + 1 :]


@pytest.mark.parametrize(
    "path, rule",
    [
        ("tile/0/100", "log-tiles"),  # a full level-0 tile (checked against its level-1 parent)
        ("tile/1/000", "log-tiles"),  # a full level-1 tile (checked against the level-2 partial tile)
        ("tile/0/273.p/112", "log-tiles"),  # a partial tile (checked against the root)
        ("tile/1/001.p/17", "log-tiles"),
        ("tile/entries/100", "log-entry-bundle"),
        ("tile/entries/273.p/112", "log-entry-bundle"),
    ],
)
def test_any_flipped_byte_is_a_mismatch(path: str, rule: str) -> None:
    tree = StaticTree(ORIGIN, LOG_KEY, entries(70_000))
    for at in (0, 31, 32 * 57 + 5):
        view = TreeView(tree.size, tree.root)
        tiles = level0_tiles(0, tree.size, tree.size)
        bodies = {t.path: tree.body(t.path) or b"" for t in view.missing(tiles)}
        bundles = {bundle_of(t).path: tree.body(bundle_of(t).path) or b"" for t in tiles}
        target = bodies if path in bodies else bundles
        target[path] = flip(target[path], at)
        with pytest.raises(TreeMismatch) as caught:
            view.add(bodies)
            for tile in level0_tiles(0, tree.size, tree.size):
                view.entries(tile, bundles[bundle_of(tile).path])
        assert caught.value.rule == rule
        assert caught.value.evidence


def test_wrong_lengths_are_mismatches() -> None:
    tree = StaticTree(ORIGIN, LOG_KEY, entries(300))
    view = TreeView(tree.size, tree.root)
    with pytest.raises(TreeMismatch, match="bytes, want"):
        view.add(
            {
                "tile/0/000": b"\x00" * 32 * 255,
                "tile/0/001.p/44": tree.body("tile/0/001.p/44") or b"",
                "tile/1/000.p/1": tree.body("tile/1/000.p/1") or b"",
            }
        )
    view = TreeView(tree.size, tree.root)
    authenticate_all(tree, view)
    with pytest.raises(TreeMismatch, match="does not parse"):
        view.entries(Tile(0, 0), (tree.body("tile/entries/000") or b"")[:-1])
    with pytest.raises(TreeMismatch, match="does not parse"):  # one entry too many
        view.entries(Tile(0, 1, 44), (tree.body("tile/entries/001.p/44") or b"") + b"\x00\x01x")


def test_a_fork_gives_another_old_root() -> None:
    honest = StaticTree(ORIGIN, LOG_KEY, entries(1000))
    forked = StaticTree(ORIGIN, LOG_KEY, entries(600) + entries(500, b"fork"))
    view = TreeView(forked.size, forked.root)
    authenticate_all(forked, view)
    plan = merkle.root_plan(1000)
    honest_root = plan.assemble([honest.stored[i] for i in plan.stored_indexes])[0]
    assert view.old_root(1000) != honest_root
    assert (
        view.old_root(600)
        == merkle.root_plan(600).assemble([honest.stored[i] for i in merkle.root_plan(600).stored_indexes])[0]
    )


def test_an_empty_tree_has_the_empty_root() -> None:
    TreeView(0, merkle.EMPTY_ROOT).add({})
    with pytest.raises(TreeMismatch):
        TreeView(0, b"\x00" * 32).add({})


def test_a_partial_tile_must_match_the_checkpoint_root() -> None:
    tree = StaticTree(ORIGIN, LOG_KEY, entries(300))
    view = TreeView(tree.size, b"\x00" * 32)
    with pytest.raises(TreeMismatch) as caught:
        view.add({t.path: tree.body(t.path) or b"" for t in view.missing([])})
    assert caught.value.rule == "log-tiles" and "computed_root" in caught.value.evidence


# --- entries ---------------------------------------------------------------------------------


def stmt(
    kind: str, signer: Ed25519Signer, *, document: bytes | None = None, issuer: str | None = None, origin: str = ORIGIN
) -> bytes:
    return sign_statement(
        Statement(origin, kind, signer.verifier().vkey, 1790000000, document=document, issuer=issuer), signer
    )


def test_entry_checks_in_each_mode() -> None:
    good = stmt(ISSUE, ISSUER, document=b"\x11" * 32)
    wrong = Signature(ISSUER.name, ISSUER.key_id, ISSUER.sign(b"other"))
    forged = Note(parse_unsigned(good).text, (wrong,)).to_bytes()
    wrong_log = stmt(ISSUE, ISSUER, document=b"\x11" * 32, origin="other.example/log")
    batch = [good, forged, wrong_log, b"not a statement"]
    full = check_statements(batch, 10, ORIGIN, SIGNATURES)
    assert [c.index for c in full] == [10, 11, 12, 13]
    assert [c.problem is None for c in full] == [True, False, False, False]
    assert "other.example/log" in (full[2].problem or "")
    parse = check_statements(batch, 10, ORIGIN, PARSE)
    assert [c.problem is None for c in parse] == [True, True, False, False]  # parse mode trusts the signature
    tree = check_statements(batch, 10, ORIGIN, TREE)
    assert all(c.problem is None and c.statement is None for c in tree)
    assert [c.leaf_hash for c in tree] == [merkle.leaf_hash(b) for b in batch]


@pytest.mark.parametrize(("workers", "mode"), [(1, SIGNATURES), (2, SIGNATURES), (2, PARSE)])
def test_the_two_stages_of_the_checks_find_what_one_parse_with_its_signature_finds(workers: int, mode: str) -> None:
    """monitor/checkstages.py: with workers, the main process parses and the workers verify the signatures the parse
    left (a real process pool); without, or in mode `parse` (the workers parse), one stage. Either way each entry
    ends as `parse_statement` judges it (without its signature in mode `parse`), and with two stages the parse
    already holds the statements whose signature then fails (the status index names their documents all the
    same)."""
    good = stmt(ISSUE, ISSUER, document=b"\x11" * 32)
    wrong = Signature(ISSUER.name, ISSUER.key_id, ISSUER.sign(b"other"))
    forged = Note(parse_unsigned(good).text, (wrong,)).to_bytes()
    wrong_log = stmt(ISSUE, ISSUER, document=b"\x12" * 32, origin="other.example/log")
    forged_wrong_log = Note(parse_unsigned(wrong_log).text, (wrong,)).to_bytes()
    batch = [good, forged, wrong_log, forged_wrong_log, b"not a statement", good]

    def judged(data: bytes) -> tuple[Statement | None, str | None]:
        try:
            statement = parse_statement(data, check_signature=mode == SIGNATURES)
        except TlogError as exc:
            return None, f"not a valid signed statement: {exc}"
        return (
            statement,
            None if statement.origin == ORIGIN else f"statement is for log {statement.origin!r}, not this one",
        )

    async def stages(executor: Executor | None) -> tuple[list[Checked], list[Checked]]:
        checks = Checker(executor, workers, ORIGIN, mode).start(batch, [merkle.leaf_hash(b) for b in batch], 10)
        return await checks.parsed, await checks.checked

    with process_pool(workers) if workers > 1 else contextlib.nullcontext() as executor:
        parsed, checked = asyncio.run(stages(executor))
    assert [(c.index, c.statement, c.problem) for c in checked] == [(10 + i, *judged(b)) for i, b in enumerate(batch)]
    assert [c.leaf_hash for c in checked] == [merkle.leaf_hash(b) for b in batch]
    if workers > 1:  # the forged statements parsed, for the status index
        assert [c.statement.document if c.statement else None for c in parsed] == [
            b"\x11" * 32,
            b"\x11" * 32,
            b"\x12" * 32,
            b"\x12" * 32,
            None,
            b"\x11" * 32,
        ]


def test_parse_unsigned_is_strict() -> None:
    good = stmt(ISSUE, ISSUER, document=b"\x11" * 32)
    assert parse_unsigned(good).document == b"\x11" * 32
    with pytest.raises(TlogError):
        parse_unsigned(good + b"\n")
    other_signature = sign_note(parse_unsigned(good).text, [THIEF])
    with pytest.raises(TlogError, match="not signed by its signer"):
        parse_unsigned(other_signature)


def test_the_registry_decides_who_may_write_at_each_point() -> None:
    add = stmt(ISSUER_ADD, REGISTRY, issuer=ISSUER.verifier().vkey)
    issue = stmt(ISSUE, ISSUER, document=b"\x22" * 32)
    retire = stmt(ISSUER_RETIRE, REGISTRY, issuer=ISSUER.verifier().vkey)
    rogue_add = stmt(ISSUER_ADD, THIEF, issuer=THIEF.verifier().vkey)
    batch = [issue, add, issue, retire, issue, rogue_add]
    registry = Registry(frozenset([REGISTRY.verifier().vkey]))
    checked = apply_registry(registry, check_statements(batch, 0, ORIGIN, SIGNATURES))
    assert [c.problem is None for c in checked] == [False, True, True, True, False, False]
    assert not registry.is_active(ISSUER.verifier().vkey) and registry.keys[ISSUER.verifier().vkey].retired_index == 3
    tally = Tally()
    tally.add(checked)
    assert tally.issued == {ISSUER.verifier().vkey: 1} and tally.bad_entries == 3


# --- rules -------------------------------------------------------------------------------------


def checked(data: bytes, index: int = 5) -> Checked:
    return check_statements([data], index, ORIGIN, SIGNATURES)[0]


ISSUER_RULE = WatchRule("moeys", issuer_names=frozenset(["moeys.example"]))
REGISTRY_RULE = WatchRule("registry", registry=True, revocations=True)


@pytest.mark.parametrize(
    "rule, expected, data, want",
    [
        (ISSUER_RULE, frozenset([b"\x11" * 32]), stmt(ISSUE, ISSUER, document=b"\x11" * 32), []),
        (ISSUER_RULE, frozenset([b"\x11" * 32]), stmt(ISSUE, ISSUER, document=b"\x12" * 32), [UNEXPECTED]),
        (ISSUER_RULE, None, stmt(ISSUE, ISSUER, document=b"\x11" * 32), [UNEXPECTED]),  # no list: every use
        (ISSUER_RULE, frozenset(), stmt(ISSUE, THIEF, document=b"\x12" * 32), []),  # not a watched key
        (ISSUER_RULE, frozenset([b"\x11" * 32]), stmt(REVOKE, ISSUER, document=b"\x11" * 32), []),
        (
            WatchRule("m", issuer_keys=frozenset([ISSUER.verifier().vkey]), revocations=True),
            frozenset([b"\x11" * 32]),
            stmt(REVOKE, ISSUER, document=b"\x11" * 32),
            [REVOCATION],
        ),
        (ISSUER_RULE, frozenset(), stmt(ISSUER_ADD, REGISTRY, issuer=ISSUER.verifier().vkey), [ISSUER_ADDED]),
        (ISSUER_RULE, frozenset(), stmt(ISSUER_RETIRE, REGISTRY, issuer=ISSUER.verifier().vkey), [ISSUER_RETIRED]),
        (REGISTRY_RULE, None, stmt(ISSUER_ADD, REGISTRY, issuer=THIEF.verifier().vkey), [ISSUER_ADDED]),
        (REGISTRY_RULE, None, stmt(REVOKE, THIEF, document=b"\x12" * 32), [REVOCATION]),
        (REGISTRY_RULE, None, stmt(ISSUE, THIEF, document=b"\x12" * 32), []),
        (
            WatchRule("elsewhere", issuer_names=frozenset(["moeys.example"]), logs=frozenset(["x"])),
            None,
            stmt(ISSUE, ISSUER, document=b"\x11" * 32),
            [],
        ),
    ],
)
def test_watch_rules(rule: WatchRule, expected: frozenset[bytes] | None, data: bytes, want: list[str]) -> None:
    item = checked(data)
    matches = match_rule(rule, expected, item) if rule.applies_to(ORIGIN) else []
    assert [m.what for m in matches] == want
    for match in matches:
        assert match.rule == rule.name and "entry 5" in match.summary


def test_a_chunk_matches_as_each_entry_does() -> None:
    """match_chunk (what the audit calls per chunk) gives every entry exactly match_all's matches, in its order,
    over several rules, one of them for another log, with a bad entry among the chunk's."""
    rules = [
        ISSUER_RULE,
        REGISTRY_RULE,
        WatchRule("m", issuer_keys=frozenset([ISSUER.verifier().vkey]), revocations=True),
        WatchRule("elsewhere", issuer_names=frozenset(["moeys.example"]), logs=frozenset(["x"])),
    ]
    expected = {"moeys": frozenset([b"\x11" * 32]), "m": frozenset([b"\x11" * 32])}
    datas = [
        stmt(ISSUE, ISSUER, document=b"\x11" * 32),
        stmt(ISSUE, ISSUER, document=b"\x12" * 32),
        stmt(REVOKE, ISSUER, document=b"\x11" * 32),
        stmt(ISSUER_ADD, REGISTRY, issuer=ISSUER.verifier().vkey),
        stmt(ISSUE, THIEF, document=b"\x12" * 32),
        stmt(REVOKE, THIEF, document=b"\x12" * 32),
    ]
    items = [checked(data, 10 + i) for i, data in enumerate(datas)]
    items.append(Checked(10 + len(datas), b"\x00" * 32, items[1].statement, "bad signature"))
    found = match_chunk(rules, expected, ORIGIN, items)
    each = {item.index: match_all(rules, expected, ORIGIN, item) for item in items}
    assert found == {index: ms for index, ms in each.items() if ms}
    assert sum(len(ms) for ms in found.values()) >= 6  # the rules did match, several on one entry
    assert any(len(ms) > 1 for ms in found.values())


def test_a_bad_entry_never_matches_a_watch_rule() -> None:
    item = Checked(5, b"\x00" * 32, None, "bad signature")
    assert match_rule(REGISTRY_RULE, None, item) == []


def test_expected_lists_are_parsed_strictly() -> None:
    text = "# issued\n" + "ab" * 32 + "\n\n  " + "cd" * 32 + "  # diploma\n"
    assert parse_expected(text, "f") == frozenset([b"\xab" * 32, b"\xcd" * 32])
    for bad in ("AB" * 32, "ab" * 31, "ab" * 32 + " x", "0x" + "ab" * 31):
        with pytest.raises(MalformedError, match="f line 1"):
            parse_expected(bad, "f")


def test_alert_ids_depend_on_what_happened_not_when() -> None:
    one = Alert("moeys", WATCH, ORIGIN, "entry 5 aa unexpected", "s", 1, {"x": 1})
    two = Alert("moeys", WATCH, ORIGIN, "entry 5 aa unexpected", "other words", 99, {"x": 2})
    assert one.id == two.id == alert_id("moeys", ORIGIN, "entry 5 aa unexpected")
    assert Alert("registry", WATCH, ORIGIN, "entry 5 aa unexpected", "s", 1).id != one.id
    assert set(one.to_json()) == {"id", "time", "log", "rule", "category", "summary", "evidence"}
    with pytest.raises(ValueError):
        Alert("x", "nonsense", ORIGIN, "k", "s", 1)
    assert Alert("log-fork", MISBEHAVIOUR, ORIGIN, "k", "s", 1).category == "misbehaviour"


# --- split views --------------------------------------------------------------------------------


def test_witness_checkpoints_need_both_signatures_and_consistency() -> None:
    witness = CosignatureV1Signer("w.example", b"\x09" * 32, lambda: 1790000000)
    policy = parse_policy(f"log {LOG_KEY.verifier().vkey}\nwitness w {witness.verifier().vkey}\nquorum none\n")
    tree = StaticTree(ORIGIN, LOG_KEY, entries(20))
    text = Checkpoint(ORIGIN, 20, tree.root).text
    cosigned = sign_note(text, [LOG_KEY, witness])
    assert open_witness_checkpoint(cosigned, policy, ORIGIN, "w") == Signed(20, tree.root, cosigned)
    with pytest.raises(TlogError):
        open_witness_checkpoint(sign_note(text, [LOG_KEY]), policy, ORIGIN, "w")  # no cosignature
    with pytest.raises(TlogError):
        open_witness_checkpoint(sign_note(text, [witness]), policy, ORIGIN, "w")  # no log signature
    small = StaticTree(ORIGIN, LOG_KEY, entries(12))
    ours, theirs = Signed(20, tree.root, b""), Signed(12, small.root, b"")
    plan = merkle.consistency_plan(12, 20)
    proof = plan.assemble([tree.stored[i] for i in plan.stored_indexes])
    assert proof_conflict(ours, theirs, proof) is None
    forked = StaticTree(ORIGIN, LOG_KEY, entries(11) + [b"fork"])
    assert proof_conflict(ours, Signed(12, forked.root, b""), proof) is not None
    assert same_size_conflict(ours, Signed(20, forked.root, b"")) is not None
    assert same_size_conflict(ours, ours) is None


# --- config --------------------------------------------------------------------------------------


def test_the_example_config_parses() -> None:
    path = REPO / "monitor.example.toml"
    config = config_from_toml(tomllib.loads(path.read_text()), REPO, lambda p: p.read_text())
    log = config.logs[0]
    assert log.origin == "log.example.gov.kh/documents"
    assert dict(log.witness_urls) == {
        "w1": "https://witness1.example.org",
        "w2": "https://witness2.example.org",
        "w3": "https://witness3.example.org",
    }
    assert log.policy.quorum == "two-of-three"
    assert [r.name for r in config.watch] == ["moeys-key", "registry"]
    assert [s.type for s in config.sinks] == ["stdout", "file", "webhook", "command"]
    assert config.state == REPO / "monitor-state.db"


VKEY = LOG_KEY.verifier().vkey
GOOD_LOG = f'[[log]]\nurl = "http://127.0.0.1:1"\nvkey = "{VKEY}"\n'


@pytest.mark.parametrize(
    "text, error",
    [
        (GOOD_LOG, "'state' is required"),
        ('state = "s.db"\n', "'log' is required"),
        ('state = "s.db"\nfoo = 1\n' + GOOD_LOG, "unknown option 'foo'"),
        ('state = "s.db"\nverify = "some"\n' + GOOD_LOG, "verify must be one of"),
        ('state = "s.db"\nworkers = 0\n' + GOOD_LOG, "workers must be positive"),
        ('state = "s.db"\npoll_interval_seconds = "10"\n' + GOOD_LOG, "must be a float"),
        ('state = "s.db"\n[[log]]\nurl = "ftp://x"\nvkey = "' + VKEY + '"\n', "not an http(s) URL"),
        ('state = "s.db"\n[[log]]\nurl = "http://x"\n', "exactly one of policy, policy_file, vkey"),
        ('state = "s.db"\n[[log]]\nurl = "http://x"\nvkey = "nope"\n', "[[log]] #1"),
        ('state = "s.db"\n[[log]]\nurl = "http://x"\npolicy = "log ' + VKEY + '"\n', "no quorum line"),
        ('state = "s.db"\n[[log]]\nurl = "http://x"\npolicy_file = "missing.policy"\n', "cannot read policy file"),
        ('state = "s.db"\n' + GOOD_LOG + "quorum = 1\n", "quorum 1 is not in 0..0"),
        ('state = "s.db"\n' + GOOD_LOG + 'origin = "other"\n', "no log key for origin"),
        ('state = "s.db"\n' + GOOD_LOG + '[[watch]]\nname = "log-x"\nregistry = true\n', "reserved"),
        ('state = "s.db"\n' + GOOD_LOG + '[[watch]]\nname = "w"\n', "say registry = true, or list"),
        ('state = "s.db"\n' + GOOD_LOG + '[[watch]]\nname = "w"\nregistry = true\nissuer_names = ["a"]\n', "not both"),
        (
            'state = "s.db"\n' + GOOD_LOG + '[[watch]]\nname = "w"\nissuer_names = ["a"]\nexpected = "f"\n'
            'expected_command = ["x"]\n',
            "expected or expected_command",
        ),
        ('state = "s.db"\n' + GOOD_LOG + '[[watch]]\nname = "w"\nissuer_keys = ["bad"]\n', "[[watch]] #1"),
        ('state = "s.db"\n' + GOOD_LOG + '[[sink]]\ntype = "pager"\n', "type must be one of"),
        ('state = "s.db"\n' + GOOD_LOG + '[[sink]]\ntype = "webhook"\n', "needs ['url']"),
        ('state = "s.db"\n' + GOOD_LOG + '[[sink]]\ntype = "file"\npath = "a"\nurl = "http://x"\n', "takes ['path']"),
        ('state = "s.db"\n' + GOOD_LOG + '[[sink]]\ntype = "command"\ncommand = []\n', "command is empty"),
    ],
)
def test_bad_configs_say_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(MalformedError) as caught:
        config_from_toml(tomllib.loads(text), Path("/nonexistent"), lambda p: p.read_text())
    assert error in str(caught.value)


def test_vkey_and_witnesses_become_a_policy() -> None:
    witness = CosignatureV1Signer("w.example", b"\x09" * 32, lambda: 0).verifier().vkey
    text = (
        f'state = "s.db"\n{GOOD_LOG}quorum = 1\n[[log.witness]]\nname = "w"\nvkey = "{witness}"\n'
        'url = "http://127.0.0.1:2"\n'
    )
    config = config_from_toml(tomllib.loads(text), Path("/x"), lambda p: p.read_text())
    assert config.logs[0].policy.quorum == "quorum" and dict(config.logs[0].witness_urls) == {"w": "http://127.0.0.1:2"}
    assert config.sinks[0].type == "stdout"  # the default sink


# --- progress -------------------------------------------------------------------------------------


def test_progress_lines_and_bar() -> None:
    now = [0.0]
    plain = io.StringIO()
    progress = Progress(plain, False, lambda: now[0])
    progress.update("log", 0, 10_000)
    now[0] = 2.0
    progress.update("log", 2_000, 10_000)  # too soon for a plain line
    now[0] = 5.0
    progress.update("log", 5_000, 10_000)
    assert plain.getvalue() == "log: audited 5,000 of 10,000 entries (1,000 entries/s, ETA 5 s)\n"
    bar = io.StringIO()
    progress = Progress(bar, True, lambda: now[0])
    progress.update("log", 0, 100)
    now[0] = 6.0
    progress.update("log", 100, 100)
    assert bar.getvalue().startswith("\rlog [####################] 100% 100/100 entries 100/s ETA 0:00:00")
    assert bar.getvalue().endswith("\n")
