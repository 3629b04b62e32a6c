"""The cyclic collector paused for one index update: written once in tlogcore/gcpause.py (the monitor's
recomputed index pauses it too); this name stays for the log's callers."""

from tlogcore.gcpause import paused_gc

__all__ = ["paused_gc"]
