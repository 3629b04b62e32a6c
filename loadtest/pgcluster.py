"""A throwaway PostgreSQL cluster on 127.0.0.1, for tests and benchmarks.

    cluster = start_cluster()           # initdb into a temp dir, postgres on a free port
    dsn = cluster.create_database("t1")  # postgresql://postgres@127.0.0.1:PORT/t1
    cluster.stop()                       # and the temp dir is removed

PostgreSQL refuses to run as root, so as root the cluster runs as `nobody`
(setpriv), in a directory `nobody` owns. fsync stays on: the figures and the
durability tests mean what they say. Raises ClusterError, never skips.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loadtest.localproc import free_port

PG_ROOT = Path("/usr/lib/postgresql")


class ClusterError(RuntimeError):
    """PostgreSQL could not be set up or started."""


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin directory (or PG_BIN)."""
    if "PG_BIN" in os.environ:
        return Path(os.environ["PG_BIN"])
    versions = sorted((p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()), key=lambda p: int(p.parent.name))
    if not versions:
        raise ClusterError(f"no PostgreSQL server found under {PG_ROOT} (apt install postgresql), or set PG_BIN")
    return versions[-1]


# What the server writes, per entry under load: every byte passes through the kernel's page cache, and those copies
# were ~10 % of both cores at 10,000 entries/s (docs/status-proofs.md §11, fourteenth round). Data pages are
# counted in block_size units (8 KiB unless PostgreSQL was built otherwise).
WRITE_FIELDS = ("wal", "wal records", "full-page images", "by backends", "by the checkpointer", "by the bgwriter",
                "database", "status_page")  # fmt: skip
WRITE_COUNTERS = """SELECT w.wal_bytes::bigint, w.wal_records, w.wal_fpi, b.buffers_backend * s.block,
    b.buffers_checkpoint * s.block, b.buffers_clean * s.block, pg_database_size(current_database()),
    COALESCE(pg_relation_size(to_regclass('status_page')), 0)
FROM pg_stat_wal w, pg_stat_bgwriter b, (SELECT current_setting('block_size')::bigint AS block) s"""

# What fell inside a measured window (loadtest/serverwindow.py): checkpoints begun and the bytes they wrote, vacuum
# and analyze runs on the database's tables (autovacuum's and manual), and the WAL with its full-page images. The
# WAL's bytes from its insert position, exact at once; the statistics views lag by up to a second of a busy
# backend's work (it sends its counts once a second), so a window of a few seconds shows too few images.
MAINTENANCE_FIELDS = ("checkpoints", "checkpoint bytes", "vacuums", "analyzes", "wal", "full-page images")
MAINTENANCE_COUNTERS = """SELECT b.checkpoints_timed + b.checkpoints_req, b.buffers_checkpoint * s.block,
    COALESCE(t.vacuums, 0), COALESCE(t.analyzes, 0), pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,
    w.wal_fpi
FROM pg_stat_bgwriter b, pg_stat_wal w, (SELECT current_setting('block_size')::bigint AS block) s,
    (SELECT sum(vacuum_count + autovacuum_count) AS vacuums, sum(analyze_count + autoanalyze_count) AS analyzes
     FROM pg_stat_all_tables) t"""

# What a benchmark prints of the server it ran against (docs/reference.md "PostgreSQL server settings").
REPORTED_SETTINGS = ("shared_buffers", "max_wal_size", "checkpoint_timeout")

# The statements that took the server's time, with the 8 KiB blocks each read from outside shared_buffers (the OS
# page cache or the disk), dirtied, and wrote out itself to make room (docs/status-proofs.md §11, nineteenth round).
STATEMENT_FIELDS = ("seconds", "calls", "rows", "blocks read", "blocks dirtied", "blocks written")
TOP_STATEMENTS = """SELECT round(total_exec_time::numeric / 1000, 2), calls, rows, shared_blks_read,
    shared_blks_dirtied, shared_blks_written, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time DESC LIMIT {count}"""


@dataclass(frozen=True)
class StatementCost:
    """One statement's share of the server's time since `PgCluster.reset_statements` (pg_stat_statements)."""

    seconds: float
    counts: dict[str, int]  # STATEMENT_FIELDS after "seconds"
    query: str  # normalized, its first 90 characters

    def line(self) -> str:
        counts = ", ".join(f"{what} {count:,}" for what, count in self.counts.items())
        return f"{self.seconds:,.1f} s, {counts}: {self.query}"


@dataclass
class PgCluster:
    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    bin: Path
    as_user: list[str]
    settings: dict[str, str] | None = None  # extra server settings it was started with (start_cluster)

    @property
    def socket_dir(self) -> Path:
        return self.directory / "sock"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the server has used: the postmaster and its running children (backends,
        checkpointer, WAL writer), read from /proc, plus the children that have exited (autovacuum workers, closed
        connections' backends): the postmaster reaps them, so their CPU is in its cutime/cstime (proc(5))."""
        return sum(self.cpu_by_kind().values())

    def cpu_by_kind(self) -> dict[str, float]:
        """cpu_seconds by kind of process: "client backends", "checkpointer", "walwriter", "autovacuum worker",
        ... (the process title PostgreSQL sets), "postmaster", and "exited" (reaped children: mostly autovacuum
        workers and closed connections' backends)."""
        ticks: dict[str, int] = {}
        for pid, fields in self._processes():
            if pid == self.process.pid:
                ticks["postmaster"] = ticks.get("postmaster", 0) + int(fields[11]) + int(fields[12])
                ticks["exited"] = ticks.get("exited", 0) + int(fields[13]) + int(fields[14])  # cutime, cstime
                continue
            try:
                kind = _kind(Path(f"/proc/{pid}/cmdline").read_bytes())
            except OSError:  # the process ended meanwhile
                continue
            ticks[kind] = ticks.get(kind, 0) + int(fields[11]) + int(fields[12])
        return {kind: count / os.sysconf("SC_CLK_TCK") for kind, count in ticks.items()}

    def process_ids(self) -> list[int]:
        """The postmaster, then its live children (client backends, checkpointer, WAL writer, autovacuum...)."""
        return sorted((pid for pid, _ in self._processes()), key=lambda pid: pid != self.process.pid)

    def _processes(self) -> Iterator[tuple[int, list[str]]]:
        """The postmaster and its live children, each with the fields of /proc/<pid>/stat after its name (proc(5))."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                pid, fields = int(stat.parent.name), stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process ended meanwhile
                continue
            if pid == self.process.pid or int(fields[1]) == self.process.pid:
                yield pid, fields

    def write_counters(self, database: str) -> dict[str, int]:
        """What the server has written so far, in bytes (PostgreSQL 14-16 statistics views, cumulative): the WAL,
        the data pages written out by the client backends themselves, by the checkpointer and by the background
        writer (8 KiB each), with the WAL's records and full-page images counted; and the sizes of `database` and
        of its `status_page` table (0 if it has none). {} where the views differ (PostgreSQL 17 moved them)."""
        try:
            row = self.psql(WRITE_COUNTERS, database)
        except ClusterError:
            return {}
        return dict(zip(WRITE_FIELDS, (int(value) for value in row.split("|")), strict=True))

    def maintenance(self, database: str) -> dict[str, int]:
        """PostgreSQL's cumulative maintenance counters (MAINTENANCE_FIELDS; PostgreSQL 14-16 statistics views),
        vacuums and analyzes counted on `database`'s tables; {} where the views differ (PostgreSQL 17 moved them)."""
        try:
            row = self.psql(MAINTENANCE_COUNTERS, database)
        except ClusterError:
            return {}
        return dict(zip(MAINTENANCE_FIELDS, (int(value) for value in row.split("|")), strict=True))

    def counts_statements(self) -> bool:
        """Whether the cluster was started with pg_stat_statements loaded (`--pg-settings
        shared_preload_libraries=pg_stat_statements`)."""
        return "pg_stat_statements" in (self.settings or {}).get("shared_preload_libraries", "")

    def reset_statements(self, database: str) -> None:
        """Start counting each statement's time and blocks from now (the extension created in `database`)."""
        self.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", database)
        self.psql("SELECT pg_stat_statements_reset()", database)

    def top_statements(self, database: str, count: int = 8) -> list[StatementCost]:
        """The `count` statements of `database` that took the most time since `reset_statements`."""
        costs = []
        for row in self.psql(TOP_STATEMENTS.format(count=int(count)), database).splitlines():
            seconds, *counts, query = row.split("|", len(STATEMENT_FIELDS))
            named = dict(zip(STATEMENT_FIELDS[1:], map(int, counts), strict=True))
            costs.append(StatementCost(float(seconds), named, query))
        return costs

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL command as the superuser; its output, or ClusterError with PostgreSQL's message."""
        args = [str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-h", str(self.socket_dir), "-p", str(self.port)]
        result = subprocess.run(
            [*self.as_user, *args, "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise ClusterError(f"psql {sql!r}: {result.stderr.strip()}")
        return result.stdout.strip()

    def settings_line(self) -> str:
        """The server settings the benchmarks' figures depend on, as the running server reports them."""
        shown = self.psql(
            "SELECT string_agg(name || ' ' || current_setting(name), ', ' ORDER BY name) FROM unnest(ARRAY"
            f"[{', '.join(repr(name) for name in REPORTED_SETTINGS)}]::text[]) AS name"
        )
        return f"PostgreSQL server: {shown}"

    def create_database(self, name: str) -> str:
        """A new empty database (a copy of template1); returns its DSN."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def terminate_backends(self, database: str, where: str = "true") -> int:
        """pg_terminate_backend every client session of `database` matching `where`; how many were ended."""
        out = self.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            f" WHERE datname = '{database}' AND pid <> pg_backend_pid() AND ({where})"
        )
        return int(out or 0)

    def stop(self, remove: bool = True) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: clients disconnected, then a clean stop
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self) -> None:
        """Start the stopped cluster again on the same port, data and settings."""
        self.stop(remove=False)
        self.process = _launch(self.bin, self.directory, self.port, self.as_user, self.settings)
        _wait_ready(self)


def _kind(cmdline: bytes) -> str:
    """The kind of a server process from the title PostgreSQL gives it ("postgres: checkpointer ", "postgres:
    autovacuum worker grow", "postgres: postgres grow 127.0.0.1(5432) idle"): a connection's names its client."""
    title = cmdline.replace(b"\0", b" ").decode(errors="replace").removeprefix("postgres: ").strip()
    if title.startswith("autovacuum worker"):
        return "autovacuum worker"
    if "127.0.0.1(" in title or "[local]" in title:
        return "client backends"
    return title


def _unprivileged() -> tuple[list[str], int, int]:
    """The command prefix that drops root, and the uid/gid to own the files; nothing when not root."""
    if os.geteuid() != 0:
        return [], os.geteuid(), os.getegid()
    user = pwd.getpwnam("nobody")
    prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
    return prefix, user.pw_uid, user.pw_gid


def _launch(
    bin_dir: Path, directory: Path, port: int, as_user: list[str], settings: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    args = [
        str(bin_dir / "postgres"),
        "-D",
        str(directory / "data"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-k",
        str(directory / "sock"),
        "-c",
        "max_connections=200",
        "-c",
        "shared_buffers=128MB",
        "-c",
        "fsync=on",
        "-c",
        "synchronous_commit=on",
        # Checkpoints far apart: after each, the first change to a page writes the whole page to the WAL every commit
        # waits behind; a lookup merge touches pages all over two B-trees (loadtest/merge_bench.py; docs/reference.md
        # "PostgreSQL server settings"). The default max_wal_size is 1 GB.
        "-c",
        "max_wal_size=4GB",
        "-c",
        "checkpoint_timeout=15min",
        *(f"-c{name}={value}" for name, value in (settings or {}).items()),
    ]
    log = (directory / "postgres.log").open("ab")
    with log:
        return subprocess.Popen([*as_user, *args], stdout=log, stderr=log, start_new_session=True)


def _wait_ready(cluster: PgCluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.process.poll() is not None:
            raise ClusterError(f"postgres exited with {cluster.process.returncode}: {_tail(cluster.directory)}")
        ready = subprocess.run(
            [str(cluster.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(cluster.port)], check=False
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise ClusterError(f"postgres did not accept connections within {timeout:g} s: {_tail(cluster.directory)}")


def _tail(directory: Path) -> str:
    path = directory / "postgres.log"
    return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"


def start_cluster(base: Path | None = None, settings: dict[str, str] | None = None) -> PgCluster:
    """initdb into a new temp dir and start postgres on a free port of 127.0.0.1; ready when it returns.
    `settings` are extra server settings (name: value), for benchmarks comparing them."""
    bin_dir = postgres_bin()
    as_user, uid, gid = _unprivileged()
    directory = Path(tempfile.mkdtemp(prefix="tlog-pg-", dir=base))
    (directory / "sock").mkdir()
    for path in (directory, directory / "sock"):
        os.chown(path, uid, gid)
    os.chmod(directory, 0o700)
    init = subprocess.run(
        [
            *as_user,
            str(bin_dir / "initdb"),
            "-D",
            str(directory / "data"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if init.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise ClusterError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
    port = free_port()
    launched = _launch(bin_dir, directory, port, as_user, settings)
    cluster = PgCluster(directory, port, launched, bin_dir, as_user, settings)
    try:
        _wait_ready(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def reopen_cluster(directory: Path, settings: dict[str, str] | None = None) -> PgCluster:
    """Start a cluster kept by an earlier `start_cluster` + `stop(remove=False)` again, on a new free port of
    127.0.0.1 (its data as it was left, with `settings` as in start_cluster); ready when it returns."""
    if not (directory / "data" / "PG_VERSION").exists():
        raise ClusterError(f"{directory} holds no kept PostgreSQL cluster (no data/PG_VERSION)")
    bin_dir = postgres_bin()
    as_user, _, _ = _unprivileged()
    port = free_port()
    launched = _launch(bin_dir, directory, port, as_user, settings)
    cluster = PgCluster(directory, port, launched, bin_dir, as_user, settings)
    try:
        _wait_ready(cluster)
    except BaseException:
        cluster.stop(remove=False)
        raise
    return cluster
