"""Prometheus text metrics (exposition format 0.0.4), kept in one object passed to whoever counts."""

from collections import Counter
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.total += value

    def render(self, name: str, labels: str = "") -> list[str]:
        lines, running = [], 0
        sep = "," if labels else ""
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {running}')
        suffix = f"{{{labels}}}" if labels else ""
        lines += [f"{name}_sum{suffix} {self.total}", f"{name}_count{suffix} {running}"]
        return lines


@dataclass
class Metrics:
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    sequencing_latency: Histogram = field(default_factory=Histogram)
    witness_latency: dict[str, Histogram] = field(default_factory=dict)
    witness_failures: Counter[str] = field(default_factory=Counter)
    witness_alarms: Counter[str] = field(default_factory=Counter)  # 422: the witness holds another tree
    witness_cosigned_at: dict[str, float] = field(default_factory=dict)  # POSIX time of each witness's last cosignature
    worker_pools_replaced: int = 0  # signature worker pools rebuilt after a worker died (workerpool.py)
    status_index_lag: int | None = None  # published entries no logged index root covers (statusindexer.py)

    def render(self, tree_size: int, pool: int, published_size: int) -> str:
        lines = [
            "# HELP tlog_tree_size Entries in the log (sequenced and durable).",
            "# TYPE tlog_tree_size gauge",
            f"tlog_tree_size {tree_size}",
            "# HELP tlog_published_tree_size Size of the newest published checkpoint.",
            "# TYPE tlog_published_tree_size gauge",
            f"tlog_published_tree_size {published_size}",
            "# HELP tlog_pool_entries Submissions waiting in the sequencing pool.",
            "# TYPE tlog_pool_entries gauge",
            f"tlog_pool_entries {pool}",
            "# HELP tlog_submissions_accepted_total Statements accepted (new or duplicate).",
            "# TYPE tlog_submissions_accepted_total counter",
            f"tlog_submissions_accepted_total {self.accepted}",
            "# HELP tlog_submissions_refused_total Statements refused, by reason.",
            "# TYPE tlog_submissions_refused_total counter",
            *(f'tlog_submissions_refused_total{{reason="{r}"}} {n}' for r, n in sorted(self.refused.items())),
            "# HELP tlog_sequencing_seconds Submission to durably sequenced.",
            "# TYPE tlog_sequencing_seconds histogram",
            *self.sequencing_latency.render("tlog_sequencing_seconds"),
            "# HELP tlog_witness_cosign_seconds Time for a witness to cosign a checkpoint.",
            "# TYPE tlog_witness_cosign_seconds histogram",
        ]
        for name, histogram in sorted(self.witness_latency.items()):
            lines += histogram.render("tlog_witness_cosign_seconds", f'witness="{name}"')
        lines += [
            "# HELP tlog_witness_failures_total Failed cosigning requests, by witness.",
            "# TYPE tlog_witness_failures_total counter",
        ]
        lines += [f'tlog_witness_failures_total{{witness="{w}"}} {n}' for w, n in sorted(self.witness_failures.items())]
        lines += [
            "# HELP tlog_witness_fork_alarms_total Witness answers 422: it holds another tree for this log.",
            "# TYPE tlog_witness_fork_alarms_total counter",
        ]
        alarms = sorted(self.witness_alarms.items())
        lines += [f'tlog_witness_fork_alarms_total{{witness="{w}"}} {n}' for w, n in alarms]
        lines += [  # freshness: verifiers want the quorum's cosignatures under an hour old (tlogcore/freshness.py)
            "# HELP tlog_witness_last_cosigned_timestamp_seconds When each witness last cosigned (this process's).",
            "# TYPE tlog_witness_last_cosigned_timestamp_seconds gauge",
        ]
        cosigned = sorted(self.witness_cosigned_at.items())
        lines += [f'tlog_witness_last_cosigned_timestamp_seconds{{witness="{w}"}} {t:.0f}' for w, t in cosigned]
        lines += [
            "# HELP tlog_worker_pools_replaced_total Signature worker pools replaced after a worker process died.",
            "# TYPE tlog_worker_pools_replaced_total counter",
            f"tlog_worker_pools_replaced_total {self.worker_pools_replaced}",
        ]
        if self.status_index_lag is not None:
            lines += [
                "# HELP tlog_status_index_lag_entries Published entries not yet covered by a logged index root.",
                "# TYPE tlog_status_index_lag_entries gauge",
                f"tlog_status_index_lag_entries {self.status_index_lag}",
            ]
        return "\n".join(lines) + "\n"
