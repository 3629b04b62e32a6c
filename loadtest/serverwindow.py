"""What the machine's database work was over a measured window of appends (the growth driver's rate windows and
grow_resume's): CPU per entry by process, and what PostgreSQL's upkeep put inside the window (checkpoints begun
and the bytes they wrote, vacuum and analyze runs, WAL and full-page images per entry).

Two PostgreSQL growth runs to 10^7 on one night gave 58,657 and 46,144/s over the same window; without this the
difference could only be guessed at (forty-ninth round). SQLite runs in this process: its line is this process's
CPU alone.
"""

import time
from dataclasses import dataclass, field

from loadtest.pgcluster import PgCluster

THIS_PROCESS = "this process"


@dataclass(frozen=True)
class ServerSnapshot:
    cpu: dict[str, float]  # CPU seconds by kind of process (PgCluster.cpu_by_kind), this process's included
    counters: dict[str, int] = field(default_factory=dict)  # PgCluster.maintenance; {} for SQLite


def snapshot(cluster: PgCluster | None, database: str = "") -> ServerSnapshot:
    """The counters now: this process's CPU, and with a PostgreSQL cluster its processes' and its upkeep's."""
    if cluster is None:
        return ServerSnapshot({THIS_PROCESS: time.process_time()})
    counters = cluster.maintenance(database)
    return ServerSnapshot({**cluster.cpu_by_kind(), THIS_PROCESS: time.process_time()}, counters)


def describe(before: ServerSnapshot, after: ServerSnapshot, entries: int) -> str:
    """One line: CPU per entry by process, most first, then what PostgreSQL's upkeep did between the snapshots."""
    per_entry = {kind: (spent - before.cpu.get(kind, 0.0)) / entries * 1e6 for kind, spent in after.cpu.items()}
    shown = [(kind, us) for kind, us in sorted(per_entry.items(), key=lambda kv: -kv[1]) if us >= 0.05]
    line = "CPU per entry: " + ", ".join(f"{kind} {us:.1f} us" for kind, us in shown)
    done = {name: after.counters[name] - before.counters.get(name, 0) for name in after.counters}
    if not done:
        return line
    line += f"; checkpoints begun {done['checkpoints']} ({done['checkpoint bytes'] / 2**30:.2f} GiB written by "
    line += f"checkpoints); vacuum runs {done['vacuums']}, analyze runs {done['analyzes']}; "
    line += (
        f"WAL {done['wal'] / entries:,.0f} B and {done['full-page images'] / entries:.3f} full-page images per entry"
    )
    return line
