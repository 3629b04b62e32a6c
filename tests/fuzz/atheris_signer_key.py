"""Atheris harness for the signer_key parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["signer_key"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser signer_key`
(or `python -m tests.fuzz.atheris_signer_key CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("signer_key")
