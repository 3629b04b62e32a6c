"""Atheris harness for the vkey parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["vkey"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser vkey`
(or `python -m tests.fuzz.atheris_vkey CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("vkey")
