"""Atheris harness for the config_monitor parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["config_monitor"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser config_monitor`
(or `python -m tests.fuzz.atheris_config_monitor CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("config_monitor")
