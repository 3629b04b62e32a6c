"""The `tlog` command: keys, submission, proof bundles, QR codes and verification."""
