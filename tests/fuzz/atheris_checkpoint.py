"""Atheris harness for the checkpoint parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["checkpoint"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser checkpoint`
(or `python -m tests.fuzz.atheris_checkpoint CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("checkpoint")
