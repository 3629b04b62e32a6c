"""tlogcore/gcpause.py: an index update runs with the cyclic collector paused, and the caller's setting is kept; a
process of index updates (CollectorAtRest) collects only at rest, or after four times as many updates if it never
rests."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from tlogcore.gcpause import CollectorAtRest, paused_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()  # CollectorAtRest's start-up freeze
    (gc.enable if enabled else gc.disable)()


class Cycle:
    me: "Cycle"


def cyclic_garbage() -> "weakref.ref[Cycle]":
    """Only a collection frees it (tests/test_index_collector.py too)."""
    cycle = Cycle()
    cycle.me = cycle
    return weakref.ref(cycle)


def test_the_collector_is_paused_inside_and_enabled_again_after(restore_gc: None) -> None:
    gc.enable()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_update_that_raises_enables_it_again(restore_gc: None) -> None:
    gc.enable()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("the commit failed")
    assert gc.isenabled()


def test_a_caller_that_disabled_it_keeps_it_disabled(restore_gc: None) -> None:
    gc.disable()
    with paused_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_a_process_that_never_rests_collects_after_four_times_the_updates(restore_gc: None) -> None:
    collector = CollectorAtRest(collect_every=2)
    assert not gc.isenabled()  # no automatic collection
    cycle = cyclic_garbage()
    for _ in range(7):
        collector.after_update(True)
    collector.after_update(False)  # a request that made no update counts for nothing
    assert cycle() is not None
    collector.after_update(True)  # the eighth update: 4 x collect_every
    assert cycle() is None


def test_at_rest_it_collects_only_once_enough_updates_were_made(restore_gc: None) -> None:
    collector = CollectorAtRest(collect_every=2)
    cycle = cyclic_garbage()
    collector.after_update(True)
    collector.at_rest()
    assert cycle() is not None  # one update made: not due
    collector.after_update(True)
    collector.at_rest()
    assert cycle() is None
