"""Atheris harness for the policy parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["policy"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser policy`
(or `python -m tests.fuzz.atheris_policy CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("policy")
