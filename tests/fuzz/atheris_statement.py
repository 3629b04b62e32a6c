"""Atheris harness for the statement parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["statement"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser statement`
(or `python -m tests.fuzz.atheris_statement CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("statement")
