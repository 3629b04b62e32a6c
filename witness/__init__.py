"""The witness: checks each checkpoint is consistent with the last it saw, then cosigns (c2sp.org/tlog-witness)."""
