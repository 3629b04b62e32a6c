"""Atheris harness for the witness_request parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["witness_request"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser witness_request`
(or `python -m tests.fuzz.atheris_witness_request CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("witness_request")
