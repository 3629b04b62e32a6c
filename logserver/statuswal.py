"""The WAL of SQLite's status index file, started over after the indexer's writes (docs/status-proofs.md §9, §11
"Twenty-fourth", "Twenty-fifth" and "Forty-fourth round"). Used on the index writer's thread only."""

import logging
import sqlite3

from logserver.storage import failure_text

log = logging.getLogger("logserver.statusstore")
# How long starting the WAL over after a write waits for the readers inside it (`IndexWal.restart`): each is a
# statement long (the longest, read_upper_rows: 2.1-2.3 s for half the top at 10^7), and a reader held open for
# longer (a backup) must not hold the next update back for the writer's busy timeout: the WAL then waits for the
# next write.
WAL_WAIT_MS = 5_000


class IndexWal:
    """The writer's connection's WAL: after the indexer's write (`written`), started over after the next small one
    (`written`), or before the next write (`before`) if that comes first. The small one is where the version's
    `index-root` statement landed (`set_entry`), and lookups serve a version from then on; behind the restart
    (0.25-0.45 s at 10^7) it waited that much longer to be served (§11 "Forty-fourth round"). The WAL still holds one
    of the indexer's writes at most."""

    def __init__(self, writer: sqlite3.Connection) -> None:
        self._writer = writer
        self._due = False  # the WAL holds one of the indexer's writes

    def before(self, checkpoint: bool) -> None:
        if checkpoint:
            self.restart_if_due()

    def written(self, checkpoint: bool) -> None:
        if checkpoint:
            self._due = True
        else:
            self.restart_if_due()

    def restart_if_due(self) -> None:
        if self._due:
            self._due = False
            self.restart()

    def restart(self) -> None:
        """RESTART, not SQLite's automatic PASSIVE checkpoint: an update rewrites pages all over the file, and
        PASSIVE never starts the WAL over while a reader is inside it, which lookups and shards always are: the
        WAL grew with the run, to 2.98 GB beside a file of 733 MB in 120 s (§11 "Twenty-fourth round"). RESTART
        waits for those readers (WAL_WAIT_MS at most), holding back new writers, not new readers: the next write
        starts at the WAL's beginning, so it holds one write and the rows recorded since. Not TRUNCATE: the WAL
        keeps its blocks (about the file's size), where emptying it to 0 made each update allocate them again, and
        every fsync on the disk (the key guard's, before each commit of the log) then waited for those new blocks'
        data (ext4's ordered mode): its p99 149-157 against 243-277 ms at 10,000/s (§11 "Twenty-fifth round")."""
        try:
            write_wait_ms = int(self._writer.execute("PRAGMA busy_timeout").fetchone()[0])
            self._writer.execute(f"PRAGMA busy_timeout = {WAL_WAIT_MS}")
            try:
                busy = self._writer.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
            finally:
                self._writer.execute(f"PRAGMA busy_timeout = {write_wait_ms}")
        except sqlite3.Error as exc:
            log.warning("status index: the WAL was not checkpointed: %s", failure_text(exc))
            return
        if busy:
            log.warning("status index: the WAL was not checkpointed (readers stayed inside it); the next write tries")
