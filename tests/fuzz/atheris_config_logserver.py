"""Atheris harness for the config_logserver parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["config_logserver"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser config_logserver`
(or `python -m tests.fuzz.atheris_config_logserver CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("config_logserver")
