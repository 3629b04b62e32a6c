"""Atheris harness for the entry_bundle parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["entry_bundle"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser entry_bundle`
(or `python -m tests.fuzz.atheris_entry_bundle CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("entry_bundle")
