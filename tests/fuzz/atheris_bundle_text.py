"""Atheris harness for the bundle_text parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["bundle_text"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser bundle_text`
(or `python -m tests.fuzz.atheris_bundle_text CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("bundle_text")
