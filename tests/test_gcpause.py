"""tlogcore/gcpause.py: an index update runs with the cyclic collector paused, and the caller's setting is kept."""

import gc
from collections.abc import Iterator

import pytest

from tlogcore.gcpause import paused_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


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
