"""Atheris harness for the cosignature parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["cosignature"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser cosignature`
(or `python -m tests.fuzz.atheris_cosignature CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("cosignature")
