"""The log server: storage, the single sequencer, witnessing, and the HTTP API (see DESIGN.md)."""
