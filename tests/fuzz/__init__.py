"""Fuzzing: hypothesis properties, atheris harnesses and their corpora (see RELIABILITY.md "Fuzzing")."""
