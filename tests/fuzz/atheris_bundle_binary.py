"""Atheris harness for the bundle_binary parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["bundle_binary"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser bundle_binary`
(or `python -m tests.fuzz.atheris_bundle_binary CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("bundle_binary")
