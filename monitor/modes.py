"""The audit's modes (config `verify`), apart from config.py: the worker processes need the names without the
config's parsers (tlogcore.policy), which would add to every worker's start (processes.py)."""

SIGNATURES, PARSE, TREE = "signatures", "parse", "tree"
VERIFY_MODES = (SIGNATURES, PARSE, TREE)
