"""Atheris harness for the tile_path parser (libFuzzer flags and corpus directories as arguments).

The property it checks is `properties.TARGETS["tile_path"]` (tests/fuzz/properties.py). Run it with
`python -m tests.fuzz.run_atheris --parser tile_path`
(or `python -m tests.fuzz.atheris_tile_path CORPUS_DIR`).
"""

from .atheris_harness import main

if __name__ == "__main__":
    main("tile_path")
