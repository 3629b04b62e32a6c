"""A one-minute soak (loadtest/soak.py): mixed load on a log with three witnesses, two kill -9 of the log and two
of a witness (with one of the log's signature workers), and the log started once on an older copy of its database
(it must refuse). Nothing acknowledged is lost, no two checkpoints disagree, the log acknowledges entries again after
each restart, and no process outlives its server (RELIABILITY.md "Soak")."""

from pathlib import Path

from loadtest.soak import Soak


def test_one_minute_soak_with_kill_9(tmp_path: Path) -> None:
    result = Soak(tmp_path, minutes=1.0, kill_every=10.0, submitters=2, readers=1).run()
    assert result["log_restarts"] >= 2 and result["witness_restarts"] >= 1, result["events"]
    assert result["entries_lost"] == 0
    assert result["forks"] == 0
    per_life = result["acknowledged_per_log_life"]
    assert len(per_life) == result["log_restarts"] + 1 and all(count > 0 for count in per_life), per_life
    assert result["checkpoints_seen"] > 10  # the fork check had something to compare
    assert result["merge_delay_to_2_of_3_s"]["samples"] > 0  # witnessed checkpoints kept coming
    assert result["child_processes_seen"] >= 2 * (result["log_restarts"] + 1)  # workers of every life were seen...
    assert result["leftover_processes"] == 0  # ...and the killed logs' worker processes exited with them
    assert "has signed size" in result["old_copy_refusal"], result["events"]  # the older database: refused
    assert result["worker_kills"] >= 1  # a signature worker killed too; acknowledgements went on (per_life)
