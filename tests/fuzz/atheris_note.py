"""Atheris harness for the note parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["note"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser note`
(or `python -m tests.fuzz.atheris_note CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("note")
