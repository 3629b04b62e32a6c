"""The line the growth driver prints over a rate window (loadtest/serverwindow.py): per entry, by process, and
PostgreSQL's upkeep inside the window."""

from loadtest.serverwindow import ServerSnapshot, describe


def test_a_window_line_gives_each_process_per_entry_most_first_and_the_upkeep_between_the_snapshots() -> None:
    before = ServerSnapshot(
        {"client backends": 10.0, "checkpointer": 1.0, "this process": 5.0},
        {"checkpoints": 3, "checkpoint bytes": 2**30, "vacuums": 7, "analyzes": 9, "wal": 10**9, "full-page images": 5},
    )
    after = ServerSnapshot(
        {"client backends": 40.0, "checkpointer": 4.0, "exited": 2.0, "this process": 25.0, "walwriter": 1.0},
        {
            "checkpoints": 4,
            "checkpoint bytes": 5 * 2**29,
            "vacuums": 9,
            "analyzes": 13,
            "wal": 3 * 10**9,
            "full-page images": 200_005,
        },
    )
    line = describe(before, after, 2_000_000)
    assert line == (
        "CPU per entry: client backends 15.0 us, this process 10.0 us, checkpointer 1.5 us, exited 1.0 us, "
        "walwriter 0.5 us; checkpoints begun 1 (1.50 GiB written by checkpoints); vacuum runs 2, analyze runs 4; "
        "WAL 1,000 B and 0.100 full-page images per entry"
    )


def test_sqlite_s_window_is_this_process_alone() -> None:
    line = describe(ServerSnapshot({"this process": 1.0}), ServerSnapshot({"this process": 3.5}), 100_000)
    assert line == "CPU per entry: this process 25.0 us"
