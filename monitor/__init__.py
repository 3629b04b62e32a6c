"""The monitor: follows logs through tiles, verifies everything, and alerts on the unexpected."""
